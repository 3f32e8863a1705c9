"""Mounting the Qiniu API on the gateway's aiohttp application."""

from __future__ import annotations

from aiohttp import web

from gateway.config import GatewayConfig

from . import form, v1, v2
from .errors import METHOD_NOT_ALLOWED
from .responses import Handler, preflight, qiniu_handler
from .runtime import RUNTIME, QiniuRuntime, runtime_context

_V2_BASE = "/buckets/{bucket}/objects/{obj}/uploads"

#: path → {method: handler}; every path also answers CORS preflights (and 405)
ROUTES: dict[str, dict[str, Handler]] = {
    "/": {"POST": form.upload},
    "/mkblk/{size}": {"POST": v1.mkblk},
    "/bput/{ctx}/{offset}": {"POST": v1.bput},
    "/mkfile/{size}": {"POST": v1.mkfile},
    "/mkfile/{size}/{params:.+}": {"POST": v1.mkfile},
    _V2_BASE: {"POST": v2.init},
    _V2_BASE + "/{upload_id}": {"POST": v2.complete, "GET": v2.list_parts, "DELETE": v2.abort},
    _V2_BASE + "/{upload_id}/{part}": {"PUT": v2.upload_part},
}


def _dispatcher(methods: dict[str, Handler]) -> Handler:
    async def dispatch(request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return await preflight(request)
        handler = methods.get(request.method)
        if handler is None:
            raise METHOD_NOT_ALLOWED.error()
        return await handler(request)

    return qiniu_handler(dispatch)


def setup(app: web.Application, config: GatewayConfig) -> None:
    app[RUNTIME] = QiniuRuntime.from_config(config)
    app.cleanup_ctx.append(runtime_context)
    for path, methods in ROUTES.items():
        app.router.add_route("*", path, _dispatcher(methods))
