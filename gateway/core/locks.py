"""Per-upload locks (ARCHITECTURE.md §7).

Every mutating request holds its upload's lock for the whole read-state →
write → save-state span. A second request waits at most ``acquire_timeout``
and, while waiting, asks the holder to finish: the holder stops reading its
body at once (even a read that waits for a stalled client, ``body.py``),
saves what it stored, and releases (as tusd does). Bytes of two requests are
never interleaved.

``MemoryLocks`` serves one process; a Redis implementation (leases renewed
while held, token-checked release) implements the same interface.
"""

from __future__ import annotations

import abc
import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

from gateway.core.errors import Locked


@dataclass
class Lease:
    key: str
    #: set when another request is waiting for this lock
    release_requested: asyncio.Event = field(default_factory=asyncio.Event)
    #: set if the lease was lost (distributed locks only); writes must stop
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    #: ``time.monotonic()`` after which the holder must hand no more bytes to
    #: the store: before anyone else could take the lock (distributed locks
    #: move it forward with every renewal; a frozen event loop cannot outrun it)
    valid_until: float = math.inf

    def expired(self) -> bool:
        """The holder must not hand the store another byte: lost, or out of time."""
        return self.lost.is_set() or time.monotonic() >= self.valid_until

    def must_stop(self) -> bool:
        """The holder should stop writing: asked to, lost, or out of time."""
        return self.release_requested.is_set() or self.expired()


class LockManager(abc.ABC):
    def __init__(self, acquire_timeout: float = 20.0) -> None:
        self.acquire_timeout = acquire_timeout

    async def open(self) -> None:
        """Connect (distributed implementations)."""

    async def close(self) -> None:
        """Disconnect."""

    async def ping(self) -> None:
        """Raise ``ServiceUnavailable`` unless the lock service answers."""

    @abc.abstractmethod
    def hold(self, key: str, timeout: float | None = None) -> AbstractAsyncContextManager[Lease]:
        """``async with locks.hold(id) as lease:`` — raise ``Locked`` after
        ``timeout`` (default ``acquire_timeout``)."""


class MemoryLocks(LockManager):
    """In-process locks for a single gateway instance."""

    def __init__(self, acquire_timeout: float = 20.0) -> None:
        super().__init__(acquire_timeout)
        self._locks: dict[str, asyncio.Lock] = {}
        self._leases: dict[str, Lease] = {}
        self._waiters: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str, timeout: float | None = None) -> AsyncIterator[Lease]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            if lock.locked() and key in self._leases:
                self._leases[key].release_requested.set()
            try:
                await asyncio.wait_for(lock.acquire(), timeout or self.acquire_timeout)
            except TimeoutError:
                raise Locked("the upload is busy with another request") from None
        finally:
            self._waiters[key] -= 1
        lease = Lease(key)
        self._leases[key] = lease
        if self._waiters[key]:
            lease.release_requested.set()
        try:
            yield lease
        finally:
            del self._leases[key]
            lock.release()
            if not self._waiters[key]:
                del self._waiters[key]
                del self._locks[key]
