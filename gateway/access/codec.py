"""URL-safe base64 as Qiniu uses it: encoded *with* ``=`` padding, decoded
with or without it (the SDKs send both)."""

from __future__ import annotations

import base64
import binascii

from .errors import BAD_REQUEST

_TO_STANDARD = str.maketrans("-_", "+/")


def b64encode(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode URL-safe base64, padded or not; raise ``ValueError`` if invalid."""
    stripped = text.strip().rstrip("=")
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        return base64.b64decode(padded.translate(_TO_STANDARD), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64: {text[:40]!r}") from exc


def b64decode_text(text: str, what: str = "parameter") -> str:
    """Decode a base64 path segment to UTF-8 text; 400 if it is not."""
    try:
        return b64decode(text).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BAD_REQUEST.error(f"invalid base64 {what}") from exc
