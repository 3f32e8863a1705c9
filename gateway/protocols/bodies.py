"""What every protocol front-end reads request bodies with.

Every read waits at most ``server.body_timeout`` for the client: a client
that stops sending (a dead connection, a stalled upload) ends its request
with 408, keeping what arrived, instead of holding its upload and memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import aiohttp
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from gateway.app_keys import CONFIG
from gateway.core import BadRequest, BodyInterrupted, RequestTimeout, TooLarge, UploadError
from gateway.rejection_logs import one_line

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)


def malformed_reason(exc: BaseException) -> str:
    """One line saying why aiohttp refused a request body (a chunk-size line
    too long, bad hex, a broken compressed stream), without the bytes it
    quotes at length."""
    return f"malformed request body: {one_line(exc)}"


def untraced(exc: E) -> E:
    """``exc`` without its traceback. aiohttp keeps a body's read error in its
    reader and in the read's future, and the traceback holds every frame the
    error passed — the reader's own and ours, with the chunk each had in hand:
    a cycle that only a full collection frees (``ARCHITECTURE.md``, §1)."""
    exc.__traceback__ = None
    return exc


async def body_read(request: web.Request, read: Awaitable[T]) -> T:
    """``await read`` (a read of ``request``'s body), or 408 when the client
    sent nothing for ``server.body_timeout`` seconds."""
    limit = request.app[CONFIG].server.body_timeout
    try:
        async with asyncio.timeout(limit):
            return await read
    except TimeoutError:
        raise RequestTimeout(f"no request body bytes for {limit:g} s") from None


class RequestBody:
    """A request's body as chunks. A client disconnect ends it with
    ``BodyInterrupted`` (the store keeps what arrived); so do a body aiohttp
    cannot decode and a client silent for ``server.body_timeout``, and then
    ``check()`` raises the 400 / 408 that explains it."""

    def __init__(self, request: web.Request, limit: int | None = None) -> None:
        self._request = request
        self.failure: UploadError | None = None
        #: bytes this body may bring (a size limit on a deferred length);
        #: past it the body ends there and ``check()`` raises 413
        self._room = limit
        #: bytes handed out so far
        self.received = 0
        self._iterator = self._chunks()

    def __aiter__(self) -> RequestBody:
        return self

    async def __anext__(self) -> bytes:
        return await anext(self._iterator)

    async def _chunks(self) -> AsyncIterator[bytes]:
        # readany(), not iter_chunks(): a request without a body shares
        # aiohttp's EMPTY_PAYLOAD, whose readchunk() ends only the first time
        # it is read in the process and then answers (b"", True) forever —
        # without suspending, so the second empty body spun the event loop
        if not self._request.body_exists:
            return
        content = self._request.content
        try:
            while chunk := await body_read(self._request, content.readany()):
                if self._room is not None:
                    if len(chunk) > self._room:
                        self.failure = TooLarge("the upload passes its size limit")
                        if self._room:
                            yield chunk[: self._room]
                        raise BodyInterrupted(self.failure.message)
                    self._room -= len(chunk)
                self.received += len(chunk)
                yield chunk
        except RequestTimeout as exc:
            self.failure = untraced(exc)
            raise BodyInterrupted(exc.message) from exc
        except RequestPayloadError as exc:
            self.failure = BadRequest(malformed_reason(exc))
            raise BodyInterrupted(self.failure.message) from untraced(exc)
        except (aiohttp.ClientPayloadError, ConnectionError, aiohttp.ClientConnectionError) as exc:
            raise BodyInterrupted(str(exc)) from untraced(exc)

    def limit(self, room: int) -> None:
        """From now on the body may bring at most ``room`` bytes in all, those
        handed out already included: 413 at once if they passed it."""
        if self.received > room:
            raise TooLarge("the upload passes its size limit")
        self._room = room - self.received

    def check(self) -> None:
        """Raise what ended the body early (a malformed body: 400; a silent
        client: 408), after the bytes before it were kept."""
        if self.failure is not None:
            raise self.failure


def request_body(request: web.Request, limit: int | None = None) -> RequestBody:
    return RequestBody(request, limit)


async def peek(body: AsyncIterator[bytes], size: int) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first ``size`` bytes of ``body`` (fewer if it ends or is cut
    sooner) and the whole body again, those bytes included. Holds at most
    ``size`` bytes plus one chunk."""
    source = aiter(body)
    chunks: list[bytes] = []
    held = 0
    ended = False
    cut: BodyInterrupted | None = None
    try:
        while held < size:
            chunk = await anext(source)
            chunks.append(chunk)
            held += len(chunk)
    except StopAsyncIteration:
        ended = True
    except BodyInterrupted as exc:
        cut = exc

    async def whole() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk
        if cut is not None:
            raise cut
        if not ended:
            async for chunk in source:
                yield chunk

    return b"".join(chunks)[:size], whole()
