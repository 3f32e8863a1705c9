"""The ``mimeType`` of an upload, as Qiniu decides it.

Without ``detectMime``/``mimeLimit``, a type the client gave is used (other
than the SDKs' placeholder ``application/octet-stream``); else the file
name's extension, the key's, then the content. With either, the content
decides first (``sniff`` reads the first ``SNIFF_BYTES``).
"""

from __future__ import annotations

import mimetypes

from gateway.content_types import OCTET_STREAM, content_type

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
