"""Content types and file names taken from clients, and how the gateway
serves objects from its own origin.

Before a client's value is stored it must fit a safe grammar: a media type is
``type/subtype`` of RFC 6838 name characters with optional ``; name=value``
parameters (token or quoted-string values), at most ``MAX_TYPE_LENGTH``
characters — no CR/LF, no control characters, nothing a header or an xattr
cannot carry. Anything else is not a content type (the object gets
``application/octet-stream``). A file name is at most ``MAX_NAME_BYTES``
bytes of UTF-8 without control characters, else dropped.

Served objects carry ``X-Content-Type-Options: nosniff`` and
``Content-Disposition: attachment`` unless their type is on the inline
allow-list (``server.inline_types``). A wildcard entry (``image/*``) never
matches a type that can carry script (HTML, XML, SVG): those are inline only
when listed exactly.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import quote

OCTET_STREAM = "application/octet-stream"
MAX_TYPE_LENGTH = 255
MAX_NAME_BYTES = 255
#: the default inline allow-list: images, video, audio, PDF, plain text
DEFAULT_INLINE = ("image/*", "video/*", "audio/*", "application/pdf", "text/plain")

_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_QUOTED = r'"[\x20\x21\x23-\x5b\x5d-\x7e]*"'
_MEDIA_TYPE = re.compile(rf"({_NAME})/({_NAME})((?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*)")
_SCRIPTABLE = ("html", "xml", "svg", "javascript", "ecmascript")


def content_type(value: str | None) -> str | None:
    """``value`` if it is a safe media type, else None."""
    if not value or len(value) > MAX_TYPE_LENGTH:
        return None
    value = value.strip(" \t")
    return value if _MEDIA_TYPE.fullmatch(value) else None


def stored_type(value: str | None) -> str:
    """The content type to serve for a stored value (octet-stream unless safe)."""
    return content_type(value) or OCTET_STREAM


def file_name(value: str | None) -> str | None:
    """``value`` if it is a usable file name, else None."""
    if not value or len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return None
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        return None
    return value


def is_inline(media_type: str, allowed: Iterable[str]) -> bool:
    """Whether ``media_type`` may be rendered inline from the gateway's origin."""
    essence = media_type.split(";", 1)[0].strip().lower()
    kind, _, sub = essence.partition("/")
    for entry in allowed:
        entry = entry.strip().lower()
        if entry == essence:
            return True
        wildcard = entry.endswith("/*") and entry[:-2] == kind
        if wildcard and not any(word in sub for word in _SCRIPTABLE):
            return True
    return False


def serving_headers(
    stored: str | None, allowed: Iterable[str], filename: str | None = None
) -> dict[str, str]:
    """``Content-Type``, ``X-Content-Type-Options`` and ``Content-Disposition``
    for an object stored with content type ``stored``."""
    media_type = stored_type(stored)
    disposition = "inline" if is_inline(media_type, allowed) else "attachment"
    name = file_name(filename)
    if name is not None:
        ascii_name = re.sub(r"[^A-Za-z0-9 ._()-]", "_", name)
        disposition += f"; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
    return {
        "Content-Type": media_type,
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": disposition,
    }
