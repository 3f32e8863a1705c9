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


async def head_of(offset: int, body: AsyncIterator[bytes]) -> tuple[bytes, AsyncIterator[bytes]]:
    """The bytes of a write at ``offset`` that may still decide the type (its
    first ones while the upload holds fewer than ``SNIFF_BYTES``) and the
    whole body again."""
    if offset >= SNIFF_BYTES:
        return b"", body
    return await peek(body, SNIFF_BYTES - offset)


async def check_head(
    service: UploadService, record: UploadRecord, offset: int, head: bytes
) -> None:
    """415 unless ``head``, the first bytes of a write at ``offset``, after
    the bytes ``record`` holds, meet the creator's ``mimeLimit`` (if any)."""
    limit = mime_limit_of(record.extra)
    if limit is None or not head or offset >= SNIFF_BYTES or offset != record.offset:
        return  # (a wrong offset: the core answers 409)
    stored = b""
    if offset:
        async for chunk in service.read_stream(record.id, 0, offset):
            stored += chunk
    _judge(limit, stored + head, record.metadata, record.key)


async def checked(
    service: UploadService, record: UploadRecord, offset: int, body: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """``body`` for a write at ``offset`` of ``record`` (read already), its
    first bytes checked where they still decide."""
    if mime_limit_of(record.extra) is None:
        return body
    head, whole = await head_of(offset, body)
    await check_head(service, record, offset, head)
    return whole


async def checked_new(
    limit: MimeLimit | None,
    metadata: Mapping[str, str],
    key: str | None,
    body: AsyncIterator[bytes],
) -> AsyncIterator[bytes]:
    """The body of a creation request, checked before the upload exists."""
    if limit is None:
        return body
    head, whole = await head_of(0, body)
    if head:
        _judge(limit, head, metadata, key)
    return whole


def _judge(limit: MimeLimit, head: bytes, metadata: Mapping[str, str], key: str | None) -> None:
    try:
        check_first_bytes(limit, head, declared_type(dict(metadata)), file_name(metadata), key)
    except AccessError as exc:
        raise UnsupportedMediaType(exc.message) from None
