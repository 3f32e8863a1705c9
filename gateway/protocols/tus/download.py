"""tus GET: download a finished upload (tusd's extension), with one Range."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from gateway.content_types import serving_headers
from gateway.core import NotReady, Status
from gateway.protocols.serving import stream_object
from gateway.protocols.tus.context import TusContext


def content_headers(metadata: dict[str, str], inline_types: Iterable[str]) -> dict[str, str]:
    filetype = metadata.get("filetype") or metadata.get("mimeType")
    filename = metadata.get("filename") or metadata.get("name")
    return serving_headers(filetype, inline_types, filename)


async def get(ctx: TusContext, upload_id: str) -> web.StreamResponse:
    record = await ctx.service.status(upload_id, check=ctx.admit)
    if record.status is not Status.FINISHED or record.key is None:
        raise NotReady("the upload is not finished")
    headers = content_headers(record.metadata, ctx.config.server.inline_types)
    return await stream_object(
        ctx.request, ctx.service, record.bucket, record.key, record.offset, headers
    )
