"""The guard between a request body and a backend write.

It enforces the byte limit, stops early when another request asks for the
upload's lock, turns a client disconnect into a clean end of the stream (so
the backend keeps what arrived), and feeds the checksum while bytes pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from gateway.core.locks import Lease


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

    @property
    def complete(self) -> bool:
        """The body arrived whole."""
        return not (self.interrupted or self.yielded_lock or self.exceeded)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._source:
                if not chunk:
                    continue
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
                if self._lease is not None and (
                    self._lease.release_requested.is_set() or self._lease.lost.is_set()
                ):
                    self.yielded_lock = True
                    return
        except BodyInterrupted:
            self.interrupted = True
