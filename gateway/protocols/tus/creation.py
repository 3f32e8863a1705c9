"""tus POST: creation, creation-with-upload, creation-defer-length and the
concatenation extension's partial and final uploads."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway.access import qetag
from gateway.access.errors import AccessError
from gateway.access.ownership import owner_of
from gateway.access.placement import NewUpload, check_content, content_rules, key_for
from gateway.core import (
    BadRequest,
    Kind,
    ObjectMeta,
    TooLarge,
    UnsupportedMediaType,
    UploadNotFound,
    UploadRecord,
    new_upload_id,
    with_insert_only,
    with_key_by_etag,
    with_object_meta,
)
from gateway.digest_fields import declared_extra
from gateway.protocols.bodies import request_body
from gateway.protocols.tus import first_bytes
from gateway.protocols.tus.context import SIZE_LIMIT, TusContext, request_checksum
from gateway.protocols.tus.headers import (
    OFFSET_CONTENT_TYPE,
    declared_type,
    http_date,
    parse_metadata,
    parse_non_negative,
)


async def create(ctx: TusContext) -> web.Response:
    headers = ctx.request.headers
    metadata = parse_metadata(headers.get("Upload-Metadata"))
    declared = declared_extra(headers.getall("Repr-Digest", []))  # 400 before any work
    concat = headers.get("Upload-Concat")
    if concat is not None and concat.strip().startswith("final"):
        record = await _create_final(ctx, concat.strip(), metadata, declared)
        return await _created(ctx, record, with_offset=False)

    length = parse_non_negative(headers.get("Upload-Length"), "Upload-Length")
    defer = headers.get("Upload-Defer-Length")
    if defer is not None:
        if defer.strip() != "1":
            raise BadRequest("Upload-Defer-Length must be 1")
        if length is not None:
            raise BadRequest("send either Upload-Length or Upload-Defer-Length, not both")
    elif length is None:
        raise BadRequest("Upload-Length or Upload-Defer-Length: 1 is required")

    kind = Kind.UPLOAD
    if concat is not None:
        if concat.strip() != "partial":
            raise BadRequest("Upload-Concat must be 'partial' or 'final;<urls>'")
        kind = Kind.PART
        # clients send the same headers with every request (tus-js-client's
        # ``headers``): a partial's Repr-Digest is the whole file's, which the
        # final upload declares and is verified over the concatenation
        declared = {}
    upload_id = new_upload_id()
    bucket, key = ctx.bucket, None
    if kind is Kind.UPLOAD:
        key = await _key(ctx, upload_id, length, metadata)
        bucket, key, metadata = await _pre_create(ctx, bucket, key, length, metadata)
    body, source = None, None
    if _has_body(ctx):  # checked before the upload exists
        if ctx.request.content_type != OFFSET_CONTENT_TYPE:
            raise UnsupportedMediaType(f"a creation body must be {OFFSET_CONTENT_TYPE}")
        body = request_body(ctx.request)
        limit = ctx.grant.policy.mime_limit if ctx.grant and kind is Kind.UPLOAD else None
        source = await first_bytes.checked_new(limit, metadata, key, body)
    record = await ctx.service.create(
        protocol="tus",
        bucket=bucket,
        key=key,
        length=length,
        kind=kind,
        metadata=metadata,
        concat="partial" if kind is Kind.PART else None,
        # a plain upload's object gets the declared type (a part's is the
        # final upload's); known now, as S3 opens the object at creation
        extra=_extra(ctx, metadata if kind is Kind.UPLOAD else None, declared),
        upload_id=upload_id,
    )
    if body is not None and source is not None:
        record = await ctx.service.write(
            record.id,
            0,
            source,
            checksum=request_checksum(ctx.request),
            content_length=ctx.request.content_length,
        )
        body.check()
    return await _created(ctx, record, with_offset=True)


def _has_body(ctx: TusContext) -> bool:
    length = ctx.request.content_length
    if length is not None:
        return length > 0
    return "chunked" in ctx.request.headers.get("Transfer-Encoding", "").lower()


async def _create_final(
    ctx: TusContext, concat: str, metadata: dict[str, str], declared: dict[str, Any]
) -> UploadRecord:
    if "Upload-Length" in ctx.request.headers:
        raise BadRequest("a final upload must not carry Upload-Length")
    _, _, urls = concat.partition(";")
    parts: list[str] = []
    for url in urls.split():
        part_id = ctx.id_from_url(url)
        if part_id is None:
            raise BadRequest(f"{url!r} is not an upload of this server")
        parts.append(part_id)
    if not parts:
        raise BadRequest("Upload-Concat: final needs at least one upload URL")
    for part_id in parts:
        # only partials this request's credential may touch
        part = await ctx.service.get(part_id)
        if part.protocol != "tus" or not ctx.gate.admits(ctx.grant, part):
            raise UploadNotFound(f"no such upload {part_id}")
    upload_id = new_upload_id()
    key = await _key(ctx, upload_id, None, metadata)
    bucket, key, metadata = await _pre_create(ctx, ctx.bucket, key, None, metadata)
    if key is None:
        raise BadRequest("saveKey with $(etag) names plain uploads only, not a concatenation")
    if bucket != ctx.bucket:
        raise BadRequest("a concatenated upload stays in the bucket of its parts")
    return await ctx.service.create_assembly(
        protocol="tus",
        bucket=bucket,
        key=key,
        parts=parts,
        metadata=metadata,
        concat="final",
        upload_id=upload_id,
        meta=_meta(ctx, metadata),
        extra={**(_extra(ctx, None) or {}), **declared} or None,
    )


async def _key(
    ctx: TusContext, upload_id: str, length: int | None, metadata: dict[str, str]
) -> str | None:
    """The object's key: the upload id, or what the credential's policy says
    (size, type and scope checked first; an existing object only replaced
    where the policy allows it); None for a key named by the content
    (``ctx.key_by_etag``), decided when the upload finishes."""
    grant = ctx.grant
    if grant is None:
        return upload_id
    policy = grant.policy
    mime = declared_type(metadata)
    try:
        check_content(policy, length, mime, first_bytes.file_name(metadata))
    except AccessError as exc:
        if exc.status == 403 and exc.message.startswith("limited mimeType"):
            raise UnsupportedMediaType(exc.message) from None
        raise
    new = NewUpload(
        bucket=ctx.bucket,
        length=length,
        mime=mime,
        fname=metadata.get("filename") or metadata.get("name"),
        metadata=metadata,
        fallback_key=upload_id,
    )
    key = key_for(policy, new)
    if not isinstance(key, str):
        ctx.key_by_etag = key
        ctx.insert_only = not policy.may_overwrite  # checked when it finishes
        _check_key(ctx, ctx.bucket, None)
        return None
    _check_key(ctx, ctx.bucket, key)  # before the store is asked about it
    ctx.insert_only = key != upload_id and not policy.may_overwrite
    if ctx.insert_only and await ctx.service.stat_object(ctx.bucket, key) is not None:
        raise AccessError(403, "file exists")
    return key


async def _pre_create(
    ctx: TusContext,
    bucket: str,
    key: str | None,
    length: int | None,
    metadata: dict[str, str],
    protocol: str = "tus",
) -> tuple[str, str | None, dict[str, str]]:
    """The pre-create hooks' say: refused (their status), or where the upload
    goes and with what metadata; a size limit they set is checked here (a
    deferred length: as the bytes arrive). ``key`` None: named by its
    content (the hook is told null; a key it names replaces that)."""
    changes = await ctx.gate.pre_create(
        {
            "protocol": protocol,
            "bucket": bucket,
            "key": key,
            "size": length,
            "metadata": metadata,
            "endUser": ctx.grant.end_user if ctx.grant else None,
        }
    )
    if changes.size_limit is not None:
        if length is not None and length > changes.size_limit:
            raise TooLarge(f"this upload may be at most {changes.size_limit} bytes")
        ctx.size_limit = changes.size_limit
    bucket, key = changes.bucket or bucket, changes.key or key
    if changes.key is not None:
        ctx.key_by_etag = None
    _check_key(ctx, bucket, key)  # a hook's key too
    if changes.key is not None and ctx.grant is not None and not ctx.grant.policy.may_overwrite:
        ctx.insert_only = True  # checked when the upload finishes
    return bucket, key, metadata if changes.metadata is None else changes.metadata


def _check_key(ctx: TusContext, bucket: str, key: str | None) -> None:
    """400 for a key no URL could serve (``gateway/keys.py``); None: the key
    named by the content, whatever its qetag (one of the same length and
    alphabet stands for it)."""
    if key is None:
        assert ctx.key_by_etag is not None
        key = ctx.key_by_etag.with_etag(qetag.of_bytes(b""))
    problem = ctx.service.key_problem(bucket, key)
    if problem is not None:
        raise BadRequest(f"invalid key: {problem}")


def _extra(
    ctx: TusContext, metadata: dict[str, str] | None, declared: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The record's extra: the object's type and lifetime (plain uploads),
    its owner (made with a credential), what its bytes are checked against
    and the digests its creation declared."""
    extra = {**owner_of(ctx.grant), **(declared or {})}
    if ctx.insert_only:
        extra = with_insert_only(extra)
    if ctx.key_by_etag is not None:
        extra = with_key_by_etag(extra, list(ctx.key_by_etag.parts))
    if ctx.size_limit is not None:
        extra[SIZE_LIMIT] = ctx.size_limit
    if metadata is not None:
        extra = with_object_meta(extra, _meta(ctx, metadata))
        if ctx.grant is not None:  # a plain upload's first bytes
            extra.update(content_rules(ctx.grant.policy))
    return extra or None


def _meta(ctx: TusContext, metadata: dict[str, str]) -> ObjectMeta | None:
    content_type = declared_type(metadata)
    delete_at = ctx.grant.policy.delete_at(time.time()) if ctx.grant else None
    if not content_type and delete_at is None:
        return None
    return ObjectMeta(content_type=content_type, delete_at=delete_at)


async def _created(ctx: TusContext, record: UploadRecord, *, with_offset: bool) -> web.Response:
    headers = {"Location": ctx.upload_url(record.id)}
    if with_offset:
        headers["Upload-Offset"] = str(record.offset)
    if record.expires_at is not None:
        headers["Upload-Expires"] = http_date(record.expires_at)
    if record.key is not None and record.is_complete and record.kind is not Kind.PART:
        await ctx.add_object_url(headers, record)
    return web.Response(status=201, headers=headers)


async def place(
    ctx: TusContext, upload_id: str, length: int | None, metadata: dict[str, str], protocol: str
) -> tuple[str, str | None, dict[str, str], dict[str, Any] | None]:
    """A new plain upload's bucket, key, metadata and record extra under the
    request's credential and the pre-create hooks, exactly as for a tus
    upload: the IETF protocol on the same path creates its uploads through this
    (its ``Repr-Digest`` too)."""
    declared = declared_extra(ctx.request.headers.getall("Repr-Digest", []))
    key = await _key(ctx, upload_id, length, metadata)
    bucket, key, metadata = await _pre_create(ctx, ctx.bucket, key, length, metadata, protocol)
    return bucket, key, metadata, _extra(ctx, metadata, declared)
