"""tus header names, values and parsers."""

from __future__ import annotations

import base64
import binascii
import email.utils
import re

from gateway.content_types import content_type
from gateway.core import BadRequest
from gateway.numbers import parse_count

TUS_VERSION = "1.0.0"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
#: the response header carrying a finished upload's object URL
OBJECT_URL_HEADER = "X-Object-Url"

#: every header a browser client needs to read (CORS expose list)
EXPOSED = (
    "Location",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Defer-Length",
    "Upload-Metadata",
    "Upload-Concat",
    "Upload-Expires",
    OBJECT_URL_HEADER,
    # the IETF resumable-upload protocol on the same path
    "Upload-Complete",
    "Upload-Incomplete",
    "Upload-Limit",
    "Upload-Draft-Interop-Version",
)
#: request headers a browser client may send (CORS allow list)
ALLOWED = (
    "Authorization",
    "Origin",
    "X-Requested-With",
    "X-Request-ID",
    "X-HTTP-Method-Override",
    "Content-Type",
    "Tus-Resumable",
    "Upload-Length",
    "Upload-Offset",
    "Upload-Metadata",
    "Upload-Defer-Length",
    "Upload-Concat",
    "Upload-Checksum",
    # the IETF resumable-upload protocol on the same path
    "Upload-Complete",
    "Upload-Incomplete",
    "Upload-Draft-Interop-Version",
    "Content-Disposition",
    "Content-Digest",
    # the whole upload's digest (integrity, instant upload)
    "Repr-Digest",
)
METHODS = "POST, HEAD, PATCH, DELETE, GET, OPTIONS"

_KEY = re.compile(r"^[^\s,]+$")


def parse_metadata(header: str | None) -> dict[str, str]:
    """``key b64,key2`` → dict; an empty header is legal; 400 when malformed."""
    result: dict[str, str] = {}
    if header is None or not header.strip():
        return result
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if len(parts) > 2 or not parts[0] or not _KEY.match(parts[0]):
            raise BadRequest("malformed Upload-Metadata")
        key = parts[0]
        if key in result:
            raise BadRequest(f"duplicate Upload-Metadata key {key!r}")
        value = ""
        if len(parts) == 2:
            try:
                value = base64.b64decode(parts[1], validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                raise BadRequest(f"Upload-Metadata value of {key!r} is not base64") from None
        result[key] = value
    return result


def declared_type(metadata: dict[str, str]) -> str | None:
    """The content type a client declared (``filetype``, as tus-js-client and
    Uppy send it) if it fits the safe grammar (``gateway/content_types.py``);
    anything else is ignored."""
    return content_type(metadata.get("filetype"))


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in metadata.items()
    )


def parse_non_negative(value: str | None, name: str) -> int | None:
    return None if value is None else parse_count(value.strip(), name)


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)
