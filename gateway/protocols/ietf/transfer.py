"""What upload creation and append share: the completeness field, the
length a request indicates, and appending its content through the core."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from gateway.core import BadRequest, Checksum, OffsetMismatch, Status, UploadRecord
from gateway.digest_fields import as_hex, parse_digests
from gateway.protocols.bodies import request_body
from gateway.protocols.ietf import fields, progress
from gateway.protocols.ietf.problems import InconsistentLength
from gateway.protocols.ietf.versions import Version
from gateway.protocols.tus.context import TusContext
from gateway.protocols.tus.first_bytes import checked
from gateway.protocols.tus.upload import room

log = logging.getLogger(__name__)


def completes(ctx: TusContext, version: Version, *, absent: bool | None = None) -> bool:
    """Whether the request's content ends the upload. ``absent`` is the
    answer when the field is missing (interop 3's PATCH: a missing
    ``Upload-Incomplete`` means complete); None = the field is required."""
    name = version.complete_field
    value = fields.boolean(ctx.request.headers, name)
    if value is None:
        if absent is None:
            raise BadRequest(f"{name} is required")
        return absent
    return not value if version.incomplete_header else value


def indicated_length(ctx: TusContext, offset: int, *, complete: bool) -> int | None:
    """The upload length the request indicates: ``Upload-Length``, and/or
    the offset plus ``Content-Length`` of a request that completes it."""
    length = fields.integer(ctx.request.headers, "Upload-Length")
    content_length = ctx.request.content_length
    if complete and content_length is not None:
        implied = offset + content_length
        if length is not None and length != implied:
            raise InconsistentLength(
                f"Upload-Length {length} disagrees with the content ending at {implied}"
            )
        length = implied
    return length


def _checksum(ctx: TusContext) -> Checksum | None:
    """``Content-Digest``: this content's own digest, checked as it passes.
    (``Repr-Digest`` is the whole upload's: the core checks it at its last
    byte, however many requests carried it.)"""
    return fields.digest(ctx.request.headers, "Content-Digest")


def has_content(ctx: TusContext) -> bool:
    length = ctx.request.content_length
    if length is not None:
        return length > 0
    return "chunked" in ctx.request.headers.get("Transfer-Encoding", "").lower()


class _Tracked:
    """The request body, noting whether it was read to its end (not cut
    short by a disconnect, nor left when another request took the upload)."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source
        self.ended = False

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._source:
            yield chunk
        self.ended = True


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def append(
    ctx: TusContext,
    record: UploadRecord,
    offset: int,
    *,
    complete: bool,
    length: int | None,
    version: Version,
) -> UploadRecord:
    """Append the request content at ``offset`` to ``record``'s upload (with
    progress 104s: ``progress.py``) and, when the request says so and its
    content arrived whole, complete it."""
    if offset != record.offset:  # reported before anything else (the core checks it again)
        raise OffsetMismatch(record.offset)
    if length is not None and record.length is not None and length != record.length:
        raise InconsistentLength(f"the upload's length is {record.length}, not {length}")
    ctx.record = record
    source = request_body(ctx.request, room(ctx, offset))  # a deferred length's size limit
    body = _Tracked(await checked(ctx.service, record, offset, source))  # a mimeLimit
    record = await progress.write(
        ctx,
        version,
        record,
        offset,
        body.chunks(),
        checksum=_checksum(ctx),
        declare_length=length if record.length is None else None,
        content_length=ctx.request.content_length,
        declare_digests=as_hex(parse_digests(ctx.request.headers.getall("Repr-Digest", []))),
    )
    source.check()  # a body aiohttp could not decode: 400, after its good bytes were kept
    if not complete or record.status is not Status.ACTIVE or not body.ended:
        return record  # an interrupted request keeps its bytes and completes nothing
    if record.length is None:  # content of unknown length: its end is the upload's
        return await ctx.service.write(
            record.id, record.offset, _nothing(), declare_length=record.offset, content_length=0
        )
    raise InconsistentLength(
        f"the content ended at {record.offset}, short of the upload's length {record.length}"
    )
