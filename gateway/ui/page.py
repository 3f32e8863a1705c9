"""The upload page: ``GET /`` redirects to ``/ui/``; the page speaks tus to
this gateway with its own small client (``static/tus.js``)."""

from __future__ import annotations

from aiohttp import web

from gateway.config import GatewayConfig

from .assets import SECURITY_HEADERS, asset, static_file

#: bytes per PATCH from the page (progress, pause and resume work per request)
CHUNK_SIZE = 4 * 1024 * 1024


def setup(app: web.Application, config: GatewayConfig) -> None:
    settings = {
        "tusPath": config.tus.path if config.tus.enabled else None,
        "chunkSize": CHUNK_SIZE,
        "maxSize": config.server.max_upload_size or None,
    }

    async def root(request: web.Request) -> web.Response:
        raise web.HTTPFound("/ui/")

    async def index(request: web.Request) -> web.Response:
        return asset("index.html")

    async def page_config(request: web.Request) -> web.Response:
        return web.json_response(settings, headers=SECURITY_HEADERS)

    app.router.add_get("/", root)
    app.router.add_get("/ui", root)
    app.router.add_get("/ui/", index)
    app.router.add_get("/ui/config.json", page_config)
    app.router.add_get("/ui/static/{name}", static_file)
