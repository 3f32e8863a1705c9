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

import mimetypes
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


# -- types from content ---------------------------------------------------------
SNIFF_BYTES = 512

_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\x1f\x8b", "application/x-gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/x-rar-compressed"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
    (4, b"ftypqt", "video/quicktime"),
    (4, b"ftyp", "video/mp4"),
)


def sniff(head: bytes) -> str | None:
    """A type recognised from the first bytes of the content, or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    for offset, magic, mime in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return mime
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"[") and _texty(head):
        return "application/json"
    if stripped[:5].lower() in (b"<!doc", b"<html"):
        return "text/html"
    if stripped[:5] == b"<?xml":
        return "text/xml"
    if head and _texty(head):
        return "text/plain"
    return None


def _texty(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by the sniff window is still text
        return exc.start >= len(head) - 3
    return True


def by_name(name: str | None) -> str | None:
    if not name:
        return None
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed


def decide(
    client_mime: str | None,
    fname: str | None,
    key: str | None,
    head: bytes,
    from_content: bool,
) -> str:
    given = content_type(client_mime) or ""  # an unsafe value counts as none
    if given.lower() == OCTET_STREAM:
        given = ""
    if from_content:
        return sniff(head) or by_name(fname) or by_name(key) or given or OCTET_STREAM
    return given or by_name(fname) or by_name(key) or sniff(head) or OCTET_STREAM
