"""The guard between a request body and a backend write.

It enforces the byte limit, stops early when another request asks for the
upload's lock (or the lock's lease runs out), turns a client disconnect into a
clean end of the stream (so the backend keeps what arrived), and feeds the
checksum while bytes pass.

A stalled client (10 of 1,000 bytes sent, then silence) must not keep its
upload's lock: while a read waits for the client, a watcher cancels that read
as soon as the lock is wanted or lost. Only the read is cancelled — bytes
already handed to the backend stay, the backend saves them as after a
disconnect, and a byte still in the socket was never counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Protocol

from backends.telemetry import warn_limited
from gateway.core.locks import Lease

log = logging.getLogger(__name__)


class BodyInterrupted(Exception):
    """Raised by a protocol's body iterator when the client went away."""


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


class GuardedBody:
    def __init__(
        self,
        source: AsyncIterator[bytes],
        *,
        limit: int | None,
        lease: Lease | None = None,
        hashers: list[Hasher] | None = None,
    ) -> None:
        self._source = source
        self._limit = limit
        self._lease = lease
        self._hashers = hashers or []
        self.received = 0
        self.interrupted = False  # the client disconnected
        self.yielded_lock = False  # another request asked for the lock
        self.exceeded = False  # more bytes than allowed were sent
        self._reading: asyncio.Task[object] | None = None  # a read waiting for the client
        self._stopping = False  # the watcher cancelled that read
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def complete(self) -> bool:
        """The body arrived whole."""
        return not (self.interrupted or self.yielded_lock or self.exceeded)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    def close(self) -> None:
        """Stop watching the lease (the write is over, read to its end or not).
        The watcher is let go too: cancelled, its traceback holds its frame,
        which holds this body and its hashers (a part's collected bytes) — a
        cycle through the task that only the collector would break."""
        self._closed = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()

    async def _iterate(self) -> AsyncIterator[bytes]:
        if self._lease is not None and self._watcher is None and not self._closed:
            self._watcher = asyncio.get_running_loop().create_task(self._watch(self._lease))
        try:
            while True:
                chunk = await self._next()
                if chunk is None:
                    return
                if not chunk:
                    continue
                if self._lease is not None and self._lease.expired():
                    self.yielded_lock = True  # too late to store this chunk
                    return
                if self._limit is not None and self.received + len(chunk) > self._limit:
                    chunk = chunk[: self._limit - self.received]
                    self.exceeded = True
                if chunk:
                    self.received += len(chunk)
                    for h in self._hashers:
                        h.update(chunk)
                    yield chunk
                if self.exceeded:
                    return
                if self._lease is not None and self._lease.must_stop():
                    self.yielded_lock = True
                    return
        finally:
            self.close()

    async def _next(self) -> bytes | None:
        """The next chunk; None at the end, on a disconnect, or once the
        watcher cancelled the read to give the lock away."""
        task = asyncio.current_task()
        self._reading = task
        try:
            chunk = await anext(self._source)
        except StopAsyncIteration:
            return None
        except BaseException as exc:
            if not self._stopping:
                if isinstance(exc, BodyInterrupted):
                    self.interrupted = True
                    return None
                raise
            chunk = None  # the watcher's cancellation, perhaps turned into another error
        finally:
            self._reading = None
        if self._stopping:
            self.yielded_lock = True
            if task is not None and task.cancelling() and task.uncancel():
                raise asyncio.CancelledError  # somebody else cancelled the request too
            return None
        return chunk

    async def _watch(self, lease: Lease) -> None:
        """Cancel a pending read once the lock is wanted or lost."""
        wanted = asyncio.ensure_future(lease.release_requested.wait())
        lost = asyncio.ensure_future(lease.lost.wait())
        try:
            await asyncio.wait({wanted, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (wanted, lost):
                waiter.cancel()
                with contextlib.suppress(BaseException):
                    await waiter
        reader = self._reading
        if reader is not None:
            self._stopping = True
            reader.cancel("the upload's lock is wanted elsewhere")
            warn_limited(
                log,
                "stalled-writer",
                "upload %s: a body read waiting for its client was cut to give the lock "
                "to another request (the bytes already stored stay)",
                lease.key,
            )
