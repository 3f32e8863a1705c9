"""Upload creation: a POST to the upload path with ``Upload-Complete``
(interop 3: ``Upload-Incomplete``), with or without content. The upload is
an ordinary core upload (kind ``UPLOAD``), placed exactly as a tus upload
(its id as the key, or the credential's policy's key); its URL goes out in a
104 before the content is read."""

from __future__ import annotations

from aiohttp import web

from gateway.content_types import content_type
from gateway.core import BadRequest, Status, UploadRecord, new_upload_id
from gateway.protocols.ietf import fields, transfer
from gateway.protocols.ietf.interim import send_104
from gateway.protocols.ietf.limits import upload_limit
from gateway.protocols.ietf.versions import Version
from gateway.protocols.tus.context import TusContext
from gateway.protocols.tus.creation import place
from gateway.protocols.tus.headers import parse_metadata

#: the content types of upload protocols, never the file's own
_TRANSFER_TYPES = {"application/partial-upload", "application/offset+octet-stream"}


def metadata_of(ctx: TusContext) -> dict[str, str]:
    """``Upload-Metadata`` (tus-js-client sends it in every protocol), else the
    representation's own ``Content-Type`` and ``Content-Disposition`` filename."""
    headers = ctx.request.headers
    metadata = parse_metadata(headers.get("Upload-Metadata"))
    if "filetype" not in metadata and "Content-Type" in headers:
        declared = content_type(ctx.request.content_type)
        if declared and declared not in _TRANSFER_TYPES:
            metadata["filetype"] = declared
    name = fields.filename(headers)
    if "filename" not in metadata and name:
        metadata["filename"] = name
    return metadata


async def create(ctx: TusContext, version: Version) -> web.Response:
    if "Upload-Offset" in ctx.request.headers:
        raise BadRequest("an upload creation request must not carry Upload-Offset")
    complete = transfer.completes(ctx, version)
    length = transfer.indicated_length(ctx, 0, complete=complete)
    metadata = metadata_of(ctx)
    upload_id = new_upload_id()
    # where it goes and its record's extra (object type, lifetime, owner), as
    # for tus: the credential's policy, then the pre-create hooks
    bucket, key, metadata, extra = await place(ctx, upload_id, length, metadata, "ietf")
    record = await ctx.service.create(
        protocol="ietf",
        bucket=bucket,
        key=key,
        length=length,
        metadata=metadata,
        extra=extra,
        upload_id=upload_id,
    )
    location = ctx.upload_url(upload_id)
    interim = {"Location": location}
    limit = upload_limit(ctx, version, record)
    if limit:
        interim["Upload-Limit"] = limit
    await send_104(ctx.request, version, interim)
    if record.status is Status.ACTIVE and (complete or transfer.has_content(ctx)):
        record = await transfer.append(
            ctx, record, 0, complete=complete, length=None, version=version
        )
    return await _created(ctx, version, record, location)


async def _created(
    ctx: TusContext, version: Version, record: UploadRecord, location: str
) -> web.Response:
    done = record.status is not Status.ACTIVE
    headers = {
        "Location": location,
        "Upload-Offset": str(record.offset),
        version.complete_field: version.complete_value(done),
    }
    limit = upload_limit(ctx, version, record)
    if limit:
        headers["Upload-Limit"] = limit
    if done:
        await ctx.add_object_url(headers, record)
    return web.Response(status=201, headers=headers)
