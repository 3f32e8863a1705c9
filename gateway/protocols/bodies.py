"""What every protocol front-end reads request bodies with."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from gateway.core.body import BodyInterrupted
from gateway.core.errors import BadRequest
from gateway.rejection_logs import one_line


def malformed_reason(exc: BaseException) -> str:
    """One line saying why aiohttp refused a request body (a chunk-size line
    too long, bad hex, a broken compressed stream), without the bytes it
    quotes at length."""
    return f"malformed request body: {one_line(exc)}"


class RequestBody:
    """A request's body as chunks. A client disconnect ends it with
    ``BodyInterrupted`` (the store keeps what arrived); so does a body aiohttp
    cannot decode, and then ``check()`` raises the 400 that explains it."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self.malformed: str | None = None
        self._iterator = self._chunks()

    def __aiter__(self) -> RequestBody:
        return self

    async def __anext__(self) -> bytes:
        return await anext(self._iterator)

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk, _ in self._request.content.iter_chunks():
                yield chunk
        except RequestPayloadError as exc:
            self.malformed = malformed_reason(exc)
            raise BodyInterrupted(self.malformed) from exc
        except (aiohttp.ClientPayloadError, ConnectionError, aiohttp.ClientConnectionError) as exc:
            raise BodyInterrupted(str(exc)) from exc

    def check(self) -> None:
        """400 if the body was malformed (after the bytes before it were kept)."""
        if self.malformed is not None:
            raise BadRequest(self.malformed)


def request_body(request: web.Request) -> RequestBody:
    return RequestBody(request)
