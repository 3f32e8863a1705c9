"""One ``write`` of a stream: the request body is cut into segments that are
streamed to Swift as they arrive (chunked transfer, no segment buffered), the
previous tail first when there is one. While one segment's PUT waits for
Swift's answer the next one is already being fed (``segments_in_flight``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from backends.base import StreamInfo, WriteResult
from backends.concurrency import bounded
from backends.errors import BackendError, BackendUnavailable, InvalidState
from backends.swift.client import StreamBody, SwiftClient, etag_of
from backends.swift.layout import Segment, dump_segments, load_segments, segment_name

_CHUNK = 256 * 1024


class _Source:
    """The request body with one chunk of look-ahead; remembers its own failure
    (it is read inside aiohttp's body writer, which would only wrap it)."""

    def __init__(self, body: AsyncIterator[bytes]) -> None:
        self._it = body.__aiter__()
        self._head = b""
        self._ended = False
        self.error: BaseException | None = None

    async def more(self) -> bool:
        while not self._head and not self._ended:
            try:
                self._head = bytes(await self._it.__anext__())
            except StopAsyncIteration:
                self._ended = True
            except Exception as exc:
                self.error = exc
                self._ended = True
                raise
        return bool(self._head)

    async def take(self, limit: int) -> bytes:
        """Up to ``limit`` bytes; b"" at the end of the body."""
        if not await self.more():
            return b""
        chunk, self._head = self._head[:limit], self._head[limit:]
        return chunk


@dataclass(eq=False)
class _Piece:
    """A segment being written."""

    name: str
    md5: hashlib._Hash = field(default_factory=lambda: hashlib.md5(usedforsecurity=False))
    size: int = 0
    fed: asyncio.Event = field(default_factory=asyncio.Event)
    #: why feeding stopped early (the tail could not be read back)
    error: BaseException | None = None
    task: asyncio.Task[Segment] | None = None

    def add(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        self.size += len(chunk)


class SegmentWriter:
    def __init__(self, client: SwiftClient, container: str) -> None:
        self.client = client
        self.cfg = client.cfg
        self.container = container

    async def write(self, stream: StreamInfo, body: AsyncIterator[bytes]) -> WriteResult:
        segments = load_segments(stream.state, stream.offset)
        source = _Source(body)
        if not await source.more():  # nothing arrived: no new segment
            return WriteResult(offset=stream.offset, state=stream.state)
        last = segments[-1] if segments else None
        tail = last if last is not None and last.size < self.cfg.min_segment_size else None
        kept = segments[:-1] if tail is not None else segments
        start = stream.offset - (tail.size if tail is not None else 0)
        pieces: list[_Piece] = []
        try:
            while True:
                piece = _Piece(segment_name(stream.id, start, stream.offset))
                feed = self._feed(piece, source, tail if not pieces else None)
                piece.task = asyncio.create_task(self._put(piece, feed))
                pieces.append(piece)
                fed = asyncio.create_task(piece.fed.wait())
                await asyncio.wait({piece.task, fed}, return_when=asyncio.FIRST_COMPLETED)
                fed.cancel()
                if piece.task.done() and piece.task.exception() is not None:
                    break  # the PUT failed
                if piece.size < self.cfg.max_segment_size:
                    break  # the body ended inside this segment
                start += piece.size
                if not await source.more():
                    break
                busy = [p.task for p in pieces if p.task and not p.task.done()]
                if len(busy) >= self.cfg.segments_in_flight:
                    await asyncio.wait(busy, return_when=asyncio.FIRST_COMPLETED)
                if any(p.task and p.task.done() and p.task.exception() for p in pieces):
                    break
            await asyncio.wait([p.task for p in pieces if p.task])
        except BaseException:
            for p in pieces:
                if p.task:
                    p.task.cancel()
            await asyncio.gather(*(p.task for p in pieces if p.task), return_exceptions=True)
            raise
        return await self._outcome(stream, kept, tail, pieces, source)

    async def _outcome(
        self,
        stream: StreamInfo,
        kept: list[Segment],
        tail: Segment | None,
        pieces: list[_Piece],
        source: _Source,
    ) -> WriteResult:
        stored: list[Segment] = []
        stray: list[str] = []  # stored after a failed segment: unreachable
        failure: BaseException | None = None
        for p in pieces:
            assert p.task is not None
            exc = p.task.exception()
            if exc is None and failure is None:
                stored.append(p.task.result())
            elif exc is None:
                stray.append(p.name)
            elif failure is None:
                failure = p.error or exc
        if stray:
            with contextlib.suppress(BackendError):
                await bounded(stray, self._delete, self.cfg.concurrency)
        if stored:
            segments = kept + stored
            result = WriteResult(
                offset=sum(s.size for s in segments),
                state=dump_segments(segments),
                after_commit=self._deleter([tail.name] if tail is not None else []),
                rollback=self._deleter([s.name for s in stored]),
            )
        else:
            result = WriteResult(offset=stream.offset, state=stream.state)
        if source.error is not None:
            raise source.error
        if failure is None:
            return result
        if isinstance(failure, BackendUnavailable):
            failure.partial = result if stored else None
            raise failure
        if isinstance(failure, BackendError):
            raise failure
        raise BackendUnavailable(
            f"swift: segment PUT failed: {failure!r}",
            partial=result if stored else None,
            retry_after=self.cfg.retry_after,
        ) from failure

    async def _feed(
        self, piece: _Piece, source: _Source, tail: Segment | None
    ) -> AsyncGenerator[bytes, None]:
        try:
            if tail is not None:
                async for chunk in self._read_tail(tail):
                    piece.add(chunk)
                    yield chunk
            limit = self.cfg.max_segment_size
            while piece.size < limit:
                chunk = await source.take(min(limit - piece.size, _CHUNK * 4))
                if not chunk:
                    break
                piece.add(chunk)
                yield chunk
        except Exception as exc:
            piece.error = exc
            raise
        finally:
            piece.fed.set()

    async def _read_tail(self, tail: Segment) -> AsyncIterator[bytes]:
        """The tail's bytes, checked against the state (size and ETag)."""
        async with self.client.request("GET", self.container, tail.name) as resp:
            if resp.status == 404:
                raise InvalidState(f"the tail segment {tail.name} is missing")
            if resp.status != 200:
                raise self.client.unavailable(f"GET {tail.name} answered {resp.status}")
            if etag_of(resp.headers) != tail.etag:
                raise InvalidState(f"the tail segment {tail.name} changed")
            got = 0
            async for chunk in resp.content.iter_chunked(_CHUNK):
                got += len(chunk)
                yield chunk
            if got != tail.size:
                raise InvalidState(f"the tail segment {tail.name} is {got} bytes, not {tail.size}")

    async def _put(self, piece: _Piece, feed: AsyncGenerator[bytes, None]) -> Segment:
        body = StreamBody(feed)
        try:
            async with self.client.request(
                "PUT",
                self.container,
                piece.name,
                data=body,
                headers={"Content-Type": "application/octet-stream"},
            ) as resp:
                await resp.read()
                if resp.status != 201:
                    raise self.client.unavailable(f"PUT {piece.name} answered {resp.status}")
                etag = etag_of(resp.headers)
        finally:
            await body.aclose()
        if piece.error is not None:
            raise piece.error
        if etag != piece.md5.hexdigest():
            raise self.client.unavailable(f"{piece.name} was stored with ETag {etag}")
        return Segment(piece.name, piece.size, etag)

    def _deleter(self, names: list[str]) -> Callable[[], Awaitable[None]] | None:
        if not names:
            return None

        async def delete() -> None:
            await bounded(names, self._delete, self.cfg.concurrency)

        return delete

    async def _delete(self, name: str) -> None:
        await self.client.call("DELETE", self.container, name, ok=(404, 409))
