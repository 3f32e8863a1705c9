"""The upload resource: offset retrieval (HEAD, or GET), append (PATCH) and
cancellation (DELETE)."""

from __future__ import annotations

from aiohttp import web

from gateway.core import (
    OBJECT_SHA256,
    BadRequest,
    OffsetMismatch,
    Status,
    UnsupportedMediaType,
    UploadRecord,
)
from gateway.digest_fields import sha256_field
from gateway.protocols.ietf import fields, transfer
from gateway.protocols.ietf.limits import upload_limit
from gateway.protocols.ietf.problems import CompletedUpload
from gateway.protocols.ietf.versions import Version
from gateway.protocols.tus.context import TusContext
from gateway.protocols.tus.upload import check_append

PARTIAL_UPLOAD = "application/partial-upload"


def _refuse_upload_fields(ctx: TusContext, version: Version) -> None:
    """Drafts -01 … -05: HEAD and DELETE must not carry Upload-Offset or the
    completeness field."""
    if not version.strict_head_delete:
        return
    for name in ("Upload-Offset", version.complete_field):
        if name in ctx.request.headers:
            raise BadRequest(f"{ctx.request.method} must not carry {name}")


async def _state_headers(ctx: TusContext, version: Version, record: UploadRecord) -> dict[str, str]:
    done = record.status is not Status.ACTIVE
    headers = {
        "Upload-Offset": str(record.offset),
        version.complete_field: version.complete_value(done),
    }
    if record.length is not None:
        headers["Upload-Length"] = str(record.length)
    limit = upload_limit(ctx, version, record)
    if limit:
        headers["Upload-Limit"] = limit
    if record.status is Status.FINISHED:
        await ctx.add_object_url(headers, record)
        digest = sha256_field(record.extra.get(OBJECT_SHA256))  # computed as bytes passed
        if digest is not None:
            headers["Repr-Digest"] = digest
    return headers


async def offset(ctx: TusContext, version: Version, upload_id: str) -> web.Response:
    _refuse_upload_fields(ctx, version)
    # An append still in flight (a client that gave up on it) is asked to
    # stop and save what it received, so the offset answered is one the next
    # append will be accepted at (the drafts: never outdated information).
    record = await ctx.service.status(upload_id, interrupt=True)
    headers = await _state_headers(ctx, version, record)
    headers["Cache-Control"] = "no-store"
    return web.Response(status=204, headers=headers)


async def append(ctx: TusContext, version: Version, upload_id: str) -> web.Response:
    request = ctx.request
    if version.partial_upload_type and request.content_type != PARTIAL_UPLOAD:
        raise UnsupportedMediaType(f"an append needs Content-Type: {PARTIAL_UPLOAD}")
    at = fields.integer(request.headers, "Upload-Offset")
    if at is None:
        raise BadRequest("Upload-Offset is required")
    # interop 3: a missing Upload-Incomplete means the content ends the upload
    complete = transfer.completes(ctx, version, absent=True if version.incomplete_header else None)
    length = transfer.indicated_length(ctx, at, complete=complete)
    check_append(ctx, at, length)
    record = await ctx.service.status(upload_id)
    if record.status is not Status.ACTIVE:
        if at != record.offset:
            raise OffsetMismatch(record.offset)
        if not (complete and not transfer.has_content(ctx)):
            raise CompletedUpload("the upload is already complete")
        # the client lost the response that completed it: answer it again
    else:
        record = await transfer.append(
            ctx, record, at, complete=complete, length=length, version=version
        )
    done = record.status is not Status.ACTIVE
    status = version.complete_status if done else version.append_status
    return web.Response(status=status, headers=await _state_headers(ctx, version, record))


async def cancel(ctx: TusContext, version: Version, upload_id: str) -> web.Response:
    _refuse_upload_fields(ctx, version)
    await ctx.service.terminate(upload_id)
    return web.Response(status=204)
