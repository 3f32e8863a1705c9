"""What one gateway process knows of a multipart session's short parts, so
that the next part can join them in the store's upload cheaply
(``multipart.py``): which parts are arriving now (a short part waits for its
predecessor to be stored, instead of being stored apart from it — unless
that one is going into the upload itself: then both are written at once),
and the
bytes of short parts waiting to be joined (sent from memory instead of read
back from the store).

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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from backends.base import MemoryBudget
from gateway.core.held_parts import HeldParts

#: how long a short part waits for the part before it to be stored
ARRIVAL_WAIT = 10.0
#: the most bytes of short parts one process holds for joining
HELD_MAX = 64 * 1024 * 1024
#: how long a held part is kept (its session may be abandoned)
HELD_TTL = 300.0


@dataclass
class _Arrival:
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: its Content-Length
    length: int | None = None
    #: the part goes into the object's upload (it anchors the parts after it)
    direct: bool = False
    #: the part waits for the one before it, to go into the upload joined to it
    joining: bool = False


class Collector:
    """A hasher that keeps the bytes passing through it."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def update(self, data: bytes, /) -> None:
        self.chunks.append(bytes(data))


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
            arrival.done.set()
            if self._arriving.get(part_id) is arrival:
                del self._arriving[part_id]

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

    async def settled(self, part_id: str) -> None:
        """Return once part ``part_id`` is no longer being received here (at
        most ``ARRIVAL_WAIT`` seconds)."""
        arrival = self._arriving.get(part_id)
        if arrival is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ARRIVAL_WAIT):
                    await arrival.done.wait()

    # -- bytes held -------------------------------------------------------------------
    async def hold(
        self, part_id: str, etag: str, collector: Collector, budget: MemoryBudget
    ) -> None:
        """Keep the bytes ``collector`` saw of the stored part ``part_id``
        (whose MD5 is ``etag``), if memory can be spared now."""
        await self._held.hold(part_id, etag, collector.chunks, budget)

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
