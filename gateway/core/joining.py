"""What one gateway process knows of a multipart session's short parts, so
that the next part can join them in the store's upload cheaply
(``multipart.py``): which parts are arriving now (a short part waits for its
predecessor's bytes to be in and verified, instead of being stored apart
from it — unless that one is going into the upload itself: then both are
written at once), and the bytes of short parts waiting to be joined (sent
from memory instead of read back from the store).

A part joins its predecessor as soon as that one's bytes are *received*
(``Received``: all of them, its Content-MD5 / CRC32 checked), while the
predecessor is still being stored as a stream of its own: the two store
writes overlap. Its place in the object rests on the predecessor's MD5
alone — the completion makes the object only from a list whose parts
before a stored part are exactly those it joined (number and MD5); a
predecessor whose store write then fails is sent again by the client.

Nothing here is needed for correctness: another instance, or this one
after a restart, finds no entry and reads the part back from its stream.
Held bytes are taken from the memory budget only when it has them to spare
at once (a held part is an optimisation, never a reason to wait), at most
``HELD_MAX`` per process, and dropped when joined, replaced, or after
``HELD_TTL`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from backends.base import MemoryBudget
from gateway.core.held_parts import HeldParts

#: how long a short part waits for the part before it to be received
ARRIVAL_WAIT = 10.0
#: the most bytes of short parts one process holds for joining
HELD_MAX = 64 * 1024 * 1024
#: how long a held part is kept (its session may be abandoned)
HELD_TTL = 300.0


@dataclass(frozen=True)
class Received:
    """A part's bytes, all in and verified, while it is being stored."""

    etag: str
    size: int
    chunks: list[bytes]
    #: its link in the session's SHA-256 chain (``digest_chain``), if any
    chain: dict[str, Any] | None = None


@dataclass
class _Arrival:
    #: set once the part is received (``received``) or no longer arriving
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False
    received: Received | None = None
    #: a later part took its bytes into the store's upload
    joined: bool = False
    #: its Content-Length
    length: int | None = None
    #: the part goes into the object's upload (it anchors the parts after it)
    direct: bool = False
    #: the part waits for the one before it, to go into the upload joined to it
    joining: bool = False


class Collector:
    """A hasher that keeps the bytes passing through it; ``full()`` is
    called once ``length`` bytes have (the body's last byte)."""

    def __init__(self, length: int | None = None, full: Callable[[], None] | None = None) -> None:
        self.chunks: list[bytes] = []
        self._left = length
        self._full = full

    def update(self, data: bytes, /) -> None:
        self.chunks.append(bytes(data))
        if self._left is not None:
            self._left -= len(data)
            if self._left == 0 and self._full is not None:
                self._full()


class Joining:
    def __init__(self) -> None:
        self._arriving: dict[str, _Arrival] = {}
        self._held = HeldParts(HELD_MAX, HELD_TTL)

    # -- parts arriving ------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def arriving(self, part_id: str, length: int | None) -> AsyncIterator[None]:
        """Part ``part_id`` (``length`` bytes) is being received (by the
        request holding its lock)."""
        arrival = _Arrival(length=length)
        self._arriving[part_id] = arrival
        try:
            yield
        finally:
            arrival.done = True
            arrival.ready.set()
            if self._arriving.get(part_id) is arrival:
                del self._arriving[part_id]

    def received(self, part_id: str, received: Received) -> None:
        """Part ``part_id``'s bytes are all in and verified (it is still
        being stored): a part waiting to join it may go now."""
        arrival = self._arriving.get(part_id)
        if arrival is not None:
            arrival.received = received
            arrival.ready.set()

    def going_direct(self, part_id: str) -> None:
        """The part being received goes into the object's upload."""
        arrival = self._arriving.get(part_id)
        if arrival is not None:
            arrival.direct = True

    def is_going_direct(self, part_id: str) -> bool:
        """Part ``part_id`` is being received here into the object's upload,
        or waits to go there joined to the part before it: the parts after
        it need not wait for it."""
        arrival = self._arriving.get(part_id)
        return arrival is not None and (arrival.direct or arrival.joining)

    def waits_to_join(self, part_id: str, before: str, minimum: int) -> None:
        """Part ``part_id``, short, waits for part ``before`` (arriving here):
        if the two reach ``minimum`` it will most likely go into the upload
        joined to it, so the part after it need not wait for it (4 MiB parts
        sent three at a time then pair up side by side, not one after the
        other). If it does not, the part after it was stored apart: packed
        at completion, as parts out of order are."""
        arrival, earlier = self._arriving.get(part_id), self._arriving.get(before)
        if arrival is None or earlier is None or arrival.length is None:
            return
        if earlier.length is not None and arrival.length + earlier.length >= minimum:
            arrival.joining = True

    async def settled(self, part_id: str) -> Received | None:
        """Return once part ``part_id`` is received or no longer arriving here
        (at most ``ARRIVAL_WAIT`` seconds): its bytes if it is received and
        still being stored (None: its record says what it is)."""
        arrival = self._arriving.get(part_id)
        if arrival is None:
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ARRIVAL_WAIT):
                await arrival.ready.wait()
        return None if arrival.done else arrival.received

    def chain_of(self, part_id: str) -> dict[str, Any] | None:
        """The SHA-256 link of part ``part_id``, received here and still
        being stored (its record carries it once stored)."""
        arrival = self._arriving.get(part_id)
        if arrival is None or arrival.done or arrival.received is None:
            return None
        return arrival.received.chain

    # -- bytes held -------------------------------------------------------------------
    async def hold(
        self, part_id: str, etag: str, collector: Collector, budget: MemoryBudget
    ) -> None:
        """Keep the bytes ``collector`` saw of the stored part ``part_id``
        (whose MD5 is ``etag``), if memory can be spared now and no later
        part took them while it was stored."""
        arrival = self._arriving.get(part_id)
        if arrival is not None and arrival.joined:
            return
        await self._held.hold(part_id, etag, collector.chunks, budget)

    def joined(self, part_id: str) -> None:
        """Part ``part_id``'s bytes went into the store's upload with a later
        part: they are held no longer (nor once it is stored)."""
        arrival = self._arriving.get(part_id)
        if arrival is not None:
            arrival.joined = True
        self._held.drop(part_id)

    def take(self, part_id: str, etag: str) -> list[bytes] | None:
        """The held bytes of part ``part_id`` if they are those of ``etag``
        (held until ``drop``)."""
        return self._held.take(part_id, etag)

    def drop(self, part_id: str) -> None:
        self._held.drop(part_id)

    def drop_session(self, session_id: str) -> None:
        """Drop the held parts of a session that ended."""
        self._held.drop_session(session_id)


async def from_memory(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
