"""Human-friendly sizes (``8MiB``) and durations (``24h``) in configuration,
for the gateway's own settings and every backend's (it lives in ``backends``,
the lower layer, so both can use it)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}
_DURATION_UNITS = {"": 1, "ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: Any) -> int:
    """``8MiB`` → 8388608; ints pass through; negative or unknown units fail."""
    if isinstance(value, bool):
        raise ValueError("expected a size, got a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    m = _NUMBER.match(str(value))
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"invalid size {value!r} (examples: 1048576, 8MiB, 5MB)")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def parse_duration(value: Any) -> float:
    """``24h`` → 86400.0; numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration, got a boolean")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    m = _NUMBER.match(str(value))
    if not m or m.group(2).lower() not in _DURATION_UNITS:
        raise ValueError(f"invalid duration {value!r} (examples: 30, 90s, 15m, 24h, 7d)")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2).lower()]


#: a pydantic field type: bytes, given as an int or a string such as ``8MiB``
Size = Annotated[int, BeforeValidator(parse_size)]
#: a pydantic field type: seconds, given as a number or a string such as ``1h``
Duration = Annotated[float, BeforeValidator(parse_duration)]
