"""The public base URL of this gateway as a client sees it.

``server.public_url`` wins; otherwise (when ``trust_forwarded``) the
``Forwarded`` header, then ``X-Forwarded-Host`` / ``X-Forwarded-Proto``, then
the request's own Host and scheme.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from aiohttp import web

from gateway.config import ServerConfig

_HOST = re.compile(r"^[A-Za-z0-9.\-\[\]:]+$")


def _forwarded(header: str) -> tuple[str | None, str | None]:
    first = header.split(",")[0]
    host = proto = None
    for pair in first.split(";"):
        name, _, value = pair.strip().partition("=")
        value = value.strip().strip('"')
        if name.lower() == "host":
            host = value
        elif name.lower() == "proto":
            proto = value.lower()
    return host, proto


def base_url(request: web.Request, server: ServerConfig) -> str:
    if server.public_url:
        return server.public_url
    host = request.host
    proto = request.scheme
    if server.trust_forwarded:
        fwd_host = fwd_proto = None
        if "Forwarded" in request.headers:
            fwd_host, fwd_proto = _forwarded(request.headers["Forwarded"])
        fwd_host = (
            fwd_host or request.headers.get("X-Forwarded-Host", "").split(",")[0].strip() or None
        )
        fwd_proto = (
            fwd_proto
            or request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
            or None
        )
        if fwd_host and _HOST.match(fwd_host):
            host = fwd_host
        if fwd_proto in ("http", "https"):
            proto = fwd_proto
    return f"{proto}://{host}"


def http_url_problem(url: str) -> str | None:
    """Why ``url`` (from a client or a signed policy) cannot be requested or
    sent as a redirect, or None: only absolute http(s) URLs with a host and a
    valid port, without whitespace or control characters."""
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return "whitespace or control characters"
    try:
        parts = urlsplit(url)
        port_ok = parts.port != 0  # .port raises ValueError out of 0-65535
    except ValueError as exc:
        return f"malformed URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        return "not an absolute http(s) URL"
    return None
