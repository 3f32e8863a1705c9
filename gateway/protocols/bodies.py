"""What every protocol front-end reads request bodies with."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway.core.body import BodyInterrupted


async def request_body(request: web.Request) -> AsyncIterator[bytes]:
    """The request body as chunks; a client disconnect becomes BodyInterrupted."""
    try:
        async for chunk, _ in request.content.iter_chunks():
            yield chunk
    except (aiohttp.ClientPayloadError, ConnectionError, aiohttp.ClientConnectionError) as exc:
        raise BodyInterrupted(str(exc)) from exc
