"""Files under ``static/`` as responses, with headers that keep every page
on this origin (CSP ``'self'``) and out of frames."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

#: nothing from another origin: scripts, styles, images, fetches — all 'self'
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def asset(name: str) -> web.Response:
    """``static/<name>`` (a plain name: no directories), else 404."""
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in TYPES or not path.is_file():
        raise web.HTTPNotFound(text="no such file\n")
    return web.Response(
        body=path.read_bytes(), headers={"Content-Type": TYPES[path.suffix], **SECURITY_HEADERS}
    )


async def static_file(request: web.Request) -> web.Response:
    return asset(request.match_info["name"])
