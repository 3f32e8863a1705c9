"""The draft's header fields: Structured Field items (RFC 8941) read and
written in one place, bounded, with a one-line 400 for a malformed value.

The drafts say a malformed ``Upload-Offset``/``Upload-Length``/
``Upload-Complete`` "MUST cause the entire header field to be ignored"; where
the field matters to the request, ignoring it would silently change what the
request means, so the gateway rejects it instead (RFC 8941 allows treating the
message as malformed).
"""

from __future__ import annotations

import base64
import binascii
import re
from email.message import EmailMessage

from multidict import CIMultiDictProxy

from gateway.core import BadRequest, Checksum, UnsupportedChecksum
from gateway.numbers import parse_count

#: RFC 8941 sf-integer, non-negative: at most 15 digits
_SF_INTEGER_MAX = 10**15 - 1  # RFC 8941: at most 15 digits
_BOOLEAN = {"?1": True, "?0": False}
#: RFC 9530 algorithm names → the core's checksum algorithms
_DIGESTS = {"sha-256": "sha256", "sha-512": "sha512"}
_DIGEST_MEMBER = re.compile(r"([a-z0-9-]+)=:([A-Za-z0-9+/=]*):")


def _one(headers: CIMultiDictProxy[str], name: str) -> str | None:
    values = headers.getall(name, [])
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"{name} must appear once")
    return values[0].strip(" \t")


def integer(headers: CIMultiDictProxy[str], name: str) -> int | None:
    """A non-negative sf-integer field, None when absent."""
    value = _one(headers, name)
    if value is None:
        return None
    return parse_count(value, name, maximum=_SF_INTEGER_MAX)


def boolean(headers: CIMultiDictProxy[str], name: str) -> bool | None:
    """An sf-boolean field (``?1``/``?0``), None when absent."""
    value = _one(headers, name)
    if value is None:
        return None
    if value not in _BOOLEAN:
        raise BadRequest(f"{name} must be ?1 or ?0")
    return _BOOLEAN[value]


def dictionary(members: dict[str, int]) -> str:
    """An sf-dictionary of integers (``Upload-Limit``)."""
    return ", ".join(f"{key}={value}" for key, value in members.items())


def digest(headers: CIMultiDictProxy[str], name: str) -> Checksum | None:
    """A ``Content-Digest`` or ``Repr-Digest`` field (RFC 9530) as a checksum
    the core checks while the bytes pass: the first of sha-256 / sha-512 it
    names. A digest naming only other algorithms is refused (never silently
    unchecked)."""
    value = _one(headers, name)
    if value is None:
        return None
    members: dict[str, bytes] = {}
    for part in value.split(","):
        m = _DIGEST_MEMBER.fullmatch(part.strip(" \t"))
        if not m:
            raise BadRequest(f"{name} must be a dictionary of algorithm=:base64:")
        try:
            members[m.group(1)] = base64.b64decode(m.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"a {name} value is not base64") from None
    for key, algorithm in _DIGESTS.items():
        if key in members:
            return Checksum(algorithm, members[key])
    raise UnsupportedChecksum(f"{name} algorithms supported: {', '.join(_DIGESTS)}")


def filename(headers: CIMultiDictProxy[str]) -> str | None:
    """The ``filename``/``filename*`` of a ``Content-Disposition`` field."""
    value = _one(headers, "Content-Disposition")
    if not value:
        return None
    message = EmailMessage()
    try:
        message["Content-Disposition"] = value
        name = message.get_filename()
    except (ValueError, TypeError, IndexError):
        raise BadRequest("malformed Content-Disposition") from None
    return name or None
