"""A ``mimeLimit`` on the bytes themselves (tus and the IETF protocol on the
same path): while an upload holds fewer than ``SNIFF_BYTES``, a write is
checked on the bytes stored so far plus its own first ones before the store
receives any — 415 otherwise, nothing of that request kept. Once the first
``SNIFF_BYTES`` passed the check, later writes are not looked at."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from gateway.access.errors import AccessError
from gateway.access.placement import check_first_bytes, mime_limit_of
from gateway.access.policy import MimeLimit
from gateway.content_types import SNIFF_BYTES
from gateway.core import UnsupportedMediaType, UploadRecord, UploadService
from gateway.protocols.bodies import peek
from gateway.protocols.tus.headers import declared_type


def file_name(metadata: Mapping[str, str]) -> str | None:
    return metadata.get("filename") or metadata.get("name")


async def checked(
    service: UploadService, record: UploadRecord, offset: int, body: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """``body`` for a write at ``offset`` of ``record``, its first bytes
    checked against the creator's ``mimeLimit`` where they still decide."""
    limit = mime_limit_of(record.extra)
    if limit is None or offset >= SNIFF_BYTES or offset != record.offset:
        return body  # (a wrong offset: the core answers 409)
    stored = b""
    if offset:
        async for chunk in service.read_stream(record.id, 0, offset):
            stored += chunk
    return await _checked(limit, stored, body, record.metadata, record.key)


async def checked_new(
    limit: MimeLimit | None,
    metadata: Mapping[str, str],
    key: str | None,
    body: AsyncIterator[bytes],
) -> AsyncIterator[bytes]:
    """The body of a creation request, checked before the upload exists."""
    if limit is None:
        return body
    return await _checked(limit, b"", body, metadata, key)


async def _checked(
    limit: MimeLimit,
    stored: bytes,
    body: AsyncIterator[bytes],
    metadata: Mapping[str, str],
    key: str | None,
) -> AsyncIterator[bytes]:
    head, whole = await peek(body, SNIFF_BYTES - len(stored))
    if not head:
        return whole  # nothing new to judge
    try:
        check_first_bytes(
            limit, stored + head, declared_type(dict(metadata)), file_name(metadata), key
        )
    except AccessError as exc:
        raise UnsupportedMediaType(exc.message) from None
    return whole
