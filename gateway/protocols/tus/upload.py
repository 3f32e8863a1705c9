"""tus HEAD, PATCH and DELETE on an upload URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

from aiohttp import web

from gateway.core import BadRequest, Kind, Status, TooLarge, UnsupportedMediaType, UploadRecord
from gateway.protocols.bodies import request_body
from gateway.protocols.tus.context import SIZE_LIMIT, TusContext, request_checksum
from gateway.protocols.tus.first_bytes import check_head, head_of
from gateway.protocols.tus.headers import (
    OFFSET_CONTENT_TYPE,
    encode_metadata,
    http_date,
    parse_non_negative,
)


async def head(ctx: TusContext, upload_id: str) -> web.Response:
    record = await ctx.service.status(upload_id, check=ctx.admit)
    headers = {"Cache-Control": "no-store"}
    final_pending = record.kind is Kind.ASSEMBLY and record.status is not Status.FINISHED
    if not final_pending:
        headers["Upload-Offset"] = str(record.offset)
    if record.length is not None:
        headers["Upload-Length"] = str(record.length)
    elif record.kind is not Kind.ASSEMBLY:
        headers["Upload-Defer-Length"] = "1"
    if record.metadata:
        headers["Upload-Metadata"] = encode_metadata(record.metadata)
    if record.concat == "partial":
        headers["Upload-Concat"] = "partial"
    elif record.concat == "final":
        urls = " ".join(f"{ctx.config.tus.path}{p}" for p in record.parts)
        headers["Upload-Concat"] = f"final;{urls}"
    if record.expires_at is not None and record.status is Status.ACTIVE:
        headers["Upload-Expires"] = http_date(record.expires_at)
    if record.status is Status.FINISHED:
        await ctx.add_object_url(headers, record)
    return web.Response(status=200, headers=headers)


async def patch(ctx: TusContext, upload_id: str) -> web.Response:
    request = ctx.request
    if request.content_type != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(f"PATCH needs Content-Type: {OFFSET_CONTENT_TYPE}")
    offset = parse_non_negative(request.headers.get("Upload-Offset"), "Upload-Offset")
    if offset is None:
        raise BadRequest("Upload-Offset is required")
    length = parse_non_negative(request.headers.get("Upload-Length"), "Upload-Length")
    _check_policy(ctx, offset, length)
    checksum = request_checksum(request)
    # a final (assembled) upload is refused by the service: 403
    body = request_body(request)
    head, source = b"", cast(AsyncIterator[bytes], body)
    if ctx.grant is not None:  # the creator's mimeLimit may judge the first bytes
        head, source = await head_of(offset, body)
    admit = ctx.admit

    async def check(record: UploadRecord) -> None:
        """On the record the write reads under the lock (no read of its own)."""
        if admit is not None:
            await admit(record)
        _check_hook_limit(ctx, offset, length)
        limit = room(ctx, offset)
        if limit is not None:
            body.limit(limit)
        await check_head(ctx.service, record, offset, head)

    record = await ctx.service.write(
        upload_id,
        offset,
        source,
        checksum=checksum,
        declare_length=length,
        content_length=request.content_length,
        check=check,
    )
    body.check()
    return await _written(ctx, record)


def check_append(ctx: TusContext, offset: int, declared: int | None) -> None:
    """What the credential and a pre-create hook's size limit allow an
    append (the IETF protocol's, on the same path)."""
    _check_policy(ctx, offset, declared)
    _check_hook_limit(ctx, offset, declared)


def _check_policy(ctx: TusContext, offset: int, declared: int | None) -> None:
    """The credential's size limits on what a PATCH declares (a length known
    at creation was checked then)."""
    if ctx.grant is None:
        return
    policy = ctx.grant.policy
    if declared is not None:
        policy.check_size(declared)
    sent = ctx.request.content_length
    if sent is not None:
        policy.check_size_so_far(offset + sent)


def _check_hook_limit(ctx: TusContext, offset: int, declared: int | None) -> None:
    """A pre-create hook's size limit on a deferred-length upload."""
    limit = ctx.record.extra.get(SIZE_LIMIT) if ctx.record is not None else None
    if not isinstance(limit, int):
        return
    sent = ctx.request.content_length
    if (declared is not None and declared > limit) or (sent is not None and offset + sent > limit):
        raise TooLarge(f"this upload may be at most {limit} bytes")


def room(ctx: TusContext, offset: int) -> int | None:
    """How many bytes a PATCH at ``offset`` may bring to a deferred-length
    upload under a size limit (the credential's fsizeLimit, a pre-create
    hook's): a body without Content-Length ends there with 413."""
    record = ctx.record
    if record is None or record.length is not None:
        return None  # the core holds a known length
    limits = [record.extra.get(SIZE_LIMIT)]
    if ctx.grant is not None and ctx.grant.policy.fsize_limit:
        limits.append(ctx.grant.policy.fsize_limit)
    known = [limit for limit in limits if isinstance(limit, int) and limit > 0]
    return max(min(known) - offset, 0) if known else None


async def _written(ctx: TusContext, record: UploadRecord) -> web.Response:
    headers = {"Upload-Offset": str(record.offset)}
    if record.expires_at is not None:
        headers["Upload-Expires"] = http_date(record.expires_at)
    if record.status is Status.FINISHED:
        await ctx.add_object_url(headers, record)
    return web.Response(status=204, headers=headers)


async def delete(ctx: TusContext, upload_id: str) -> web.Response:
    await ctx.service.terminate(upload_id, check=ctx.admit)
    return web.Response(status=204)
