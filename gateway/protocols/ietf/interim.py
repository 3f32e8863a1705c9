"""The ``104 (Upload Resumption Supported)`` interim response.

aiohttp has no API for informational responses, but it writes its own
``100 Continue`` as raw bytes through ``request.writer`` before the handler's
response starts; a 104 goes out the same way, under the same conditions:
HTTP/1.1 only (an HTTP/1.0 client cannot take a 1xx), before the final
response is prepared, and only with header values free of control characters.
The drafts forbid a 104 to a request without (or with another)
``Upload-Draft-Interop-Version``, and require it to carry that header.
"""

from __future__ import annotations

import logging
import re

from aiohttp import HttpVersion11, web

from gateway.protocols.ietf.versions import INTEROP_HEADER, Version

log = logging.getLogger(__name__)

_STATUS_LINE = "HTTP/1.1 104 Upload Resumption Supported"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def allowed(request: web.Request, version: Version) -> bool:
    """Whether this request may be answered with 104s at all."""
    return version.number is not None and request.version >= HttpVersion11


async def send_104(request: web.Request, version: Version, headers: dict[str, str]) -> bool:
    """Write a 104 carrying ``headers``; False when it may not or could not be sent."""
    if not allowed(request, version):
        return False
    fields = {INTEROP_HEADER: str(version.number), **headers}
    if any(_CONTROL.search(k) or _CONTROL.search(v) for k, v in fields.items()):
        log.warning("104 not sent for %s: a header value has control characters", request.path)
        return False
    lines = [_STATUS_LINE, *(f"{k}: {v}" for k, v in fields.items())]
    try:
        await request.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    except (ConnectionError, UnicodeEncodeError) as exc:
        # the client is gone (the body read ends next) or the URL is not latin-1
        log.info("104 not sent for %s: %s", request.path, exc)
        return False
    return True
