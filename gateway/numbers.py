"""The one parser of numbers that come from clients: header values, path
segments, Range bounds and put-policy fields.

Only ASCII digits count (``str.isdigit`` also takes ``²`` and ``١٠``), and the
length is bounded before any conversion, so a 5,000-digit value costs nothing
and never reaches ``int``'s own limit. Every refusal is a ``BadRequest`` with
a one-line reason naming the field; each protocol renders it as its 400.
"""

from __future__ import annotations

import math
import re
from typing import Any

from gateway.core.errors import BadRequest

#: the largest number a client may send: a signed 64-bit integer, which every
#: store, SQLite column and JSON consumer can hold
MAX_VALUE = 2**63 - 1
_MAX_DIGITS = len(str(MAX_VALUE))
_DIGITS = re.compile(r"[0-9]+")


def saturating(text: str) -> int:
    """``text`` (ASCII digits, already checked) as an int, or ``MAX_VALUE + 1``
    when it is larger than ``MAX_VALUE`` — for Range bounds, where a huge
    number means "past the end", not an error."""
    significant = text.lstrip("0")
    if len(significant) > _MAX_DIGITS:
        return MAX_VALUE + 1
    return min(int(significant or "0"), MAX_VALUE + 1)


def is_digits(text: str) -> bool:
    """Whether ``text`` is one or more ASCII digits."""
    return _DIGITS.fullmatch(text) is not None


def parse_count(text: str, what: str, minimum: int = 0, maximum: int = MAX_VALUE) -> int:
    """A non-negative decimal integer written in ASCII digits, within
    ``[minimum, maximum]``; else ``BadRequest`` naming ``what``."""
    if not is_digits(text):
        raise BadRequest(f"{what} must be a non-negative integer in ASCII digits")
    value = saturating(text)
    if value < minimum or value > maximum:
        raise BadRequest(f"{what} must be between {minimum} and {maximum}")
    return value


def json_number(
    value: Any, what: str, minimum: int = -MAX_VALUE, maximum: int = MAX_VALUE
) -> int | None:
    """An integer field of a client's JSON document (a put policy): a JSON
    integer, an integral finite JSON number or a string of ASCII digits (with
    an optional ``-``), within ``[minimum, maximum]``. None for absent or
    ``""``; ``BadRequest`` naming ``what`` for anything else (``1e400``,
    ``"1e400"``, ``10**400``, ``true``, a list)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRequest(f"{what} must be an integer")
    if isinstance(value, str):
        text = value.strip()
        negative = text.startswith("-")
        digits = text[1:] if negative else text
        if not is_digits(digits):
            raise BadRequest(f"{what} must be an integer in ASCII digits")
        number = -saturating(digits) if negative else saturating(digits)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer() or abs(value) > MAX_VALUE:
            raise BadRequest(f"{what} must be an integer")
        number = int(value)
    else:
        raise BadRequest(f"{what} must be an integer")
    if number < minimum or number > maximum:
        raise BadRequest(f"{what} must be between {minimum} and {maximum}")
    return number
