"""Serving an object over HTTP, shared by the tus GET and the gateway's own
object URLs (``gateway/objects.py``): one ``bytes=`` Range, 206 with
``Content-Range``, HEAD without a body, the bytes streamed from the store."""

from __future__ import annotations

import re

from aiohttp import web

from gateway.core import RangeNotSatisfiable, UploadService
from gateway.numbers import saturating

_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of a single ``bytes=`` range; None = whole object.
    Bounds past any size (however many digits) mean "to the end"."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # unsupported forms (multiple ranges) get the whole object
    first = saturating(m.group(1)) if m.group(1) else None
    last = saturating(m.group(2)) if m.group(2) else None
    if first is not None:
        end = min(last + 1, size) if last is not None else size
        if first >= size or (last is not None and last < first):
            raise RangeNotSatisfiable(f"bytes */{size}")
        return first, end
    assert last is not None
    if last == 0:
        raise RangeNotSatisfiable(f"bytes */{size}")
    return max(size - last, 0), size


async def stream_object(
    request: web.Request,
    service: UploadService,
    bucket: str,
    key: str,
    size: int,
    headers: dict[str, str],
) -> web.StreamResponse:
    """Send ``key`` (or the requested range of it) as the response."""
    rng = parse_range(request.headers.get("Range"), size)
    start, end = rng if rng else (0, size)
    response = web.StreamResponse(status=206 if rng else 200, headers=headers)
    response.headers["Accept-Ranges"] = "bytes"
    if rng:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    response.content_length = end - start
    await response.prepare(request)
    if request.method != "HEAD" and end > start:
        async for chunk in service.read(bucket, key, start, end):
            await response.write(chunk)
    await response.write_eof()
    return response
