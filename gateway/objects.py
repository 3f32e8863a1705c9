"""The gateway's own object URLs (``GET /objects/{bucket}/{key}``) — the URL
business services get when the backend issues none (local disk)."""

from __future__ import annotations

from aiohttp import web

from gateway.access.errors import AccessError
from gateway.access.gate import GATE
from gateway.app_keys import CONFIG, SERVICE
from gateway.content_types import serving_headers
from gateway.core import (
    RangeNotSatisfiable,
    ServiceUnavailable,
    UploadError,
    client_message,
)
from gateway.digest_fields import sha256_field
from gateway.keys import NOT_UTF8, is_utf8
from gateway.observability.context import current_id, note_failure
from gateway.protocols.serving import stream_object
from gateway.urls import base_url


async def get_object(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    bucket, key = request.match_info["bucket"], request.match_info["key"]
    gate = request.app[GATE]
    if gate.is_private(bucket):
        # checked before the object is looked up: nothing about it is revealed
        try:
            gate.check_signed(base_url(request, request.app[CONFIG].server) + request.raw_path)
        except AccessError as exc:
            return web.Response(status=exc.status, text=exc.message + "\n")
    if not is_utf8(key):
        # no store can name it (S3's client cannot even encode it): never stored
        return web.Response(status=400, text=NOT_UTF8 + "\n")
    try:
        info = await service.stat_object(bucket, key)
        if info is None:
            raise web.HTTPNotFound(text="no such object\n")
        headers = serving_headers(info.content_type, request.app[CONFIG].server.inline_types)
        digest = sha256_field(info.sha256)  # kept with the object by the store
        if digest is not None:
            headers["Repr-Digest"] = digest
        return await stream_object(request, service, bucket, key, info.size, headers)
    except UploadError as exc:
        if exc.status >= 500:
            note_failure(exc)
        headers = {}
        if isinstance(exc, ServiceUnavailable):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, RangeNotSatisfiable):
            headers["Content-Range"] = exc.message
        return web.Response(
            status=exc.status, text=client_message(exc, current_id()) + "\n", headers=headers
        )


def setup(app: web.Application) -> None:
    app.router.add_get("/objects/{bucket}/{key:.+}", get_object)
