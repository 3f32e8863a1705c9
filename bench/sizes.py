"""Binary sizes for the benchmark's command lines: ``8M`` = 8 MiB."""

from __future__ import annotations

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """``512M`` → 536870912 (K, M, G are KiB, MiB, GiB; ``MiB`` also accepted)."""
    s = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = s[-1] if s and s[-1] in "KMG" else ""
    return int(float(s[: len(s) - len(unit)]) * _UNITS[unit])


def human(n: int) -> str:
    """536870912 → ``512M``."""
    for unit in ("G", "M", "K"):
        if n >= _UNITS[unit] and n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]}{unit}"
    return str(n)
