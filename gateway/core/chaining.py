"""Chaining a multipart session's SHA-256 through its parts as they arrive
(the links: ``digest_chain.py``), so that completing the object reads
nothing back for its digest.

A part whose predecessor's link is known when its first byte comes
continues that link as its bytes pass (``Link``). One whose predecessor is
still arriving (the SDKs send three parts at a time) or missing keeps its
bytes in this process's memory instead (``Chaining.hold``, at most
``PENDING_MAX`` bytes per process, for ``PENDING_TTL`` seconds), and the
chain is carried through it as soon as its predecessor's link is written
(``Chaining.extend``, called after every part, before it is answered).

Nothing here is needed for correctness: bytes held by another instance, or
lost in a restart, only leave the chain broken there, and the completion
reads back what it does not cover (``digests.continued`` /
``concatenation``, counted as ``digest-reread``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from backends.base import MemoryBudget
from gateway.core import digest_chain, digests
from gateway.core.held_parts import HeldParts
from gateway.core.joining import Collector
from gateway.core.records import Status, UploadRecord
from gateway.core.state.base import StateStore

#: the most bytes of parts one process holds for the chain
PENDING_MAX = 64 * 1024 * 1024
#: how long they are held (the part before them may never come)
PENDING_TTL = 300.0
#: in a part's ``extra``: which request stored it (held bytes are of that one)
_PUT = "core:chain-put"
_ALGORITHMS = ("sha-256",)


class Link:
    """One part's place in its session's chain while its bytes pass (a
    ``Hasher``): continuing its predecessor's link, or collecting them."""

    def __init__(self, running: digests.Running | None, prev: str | None, collect: bool) -> None:
        self.running = running
        self.prev = prev
        self.start = running.offset if running is not None else 0
        self.collector = Collector() if running is None and collect else None
        self.put = secrets.token_hex(8)
        #: the link written with the part (``seal``)
        self.written: dict[str, Any] | None = None

    def update(self, data: bytes, /) -> None:
        if self.running is not None:
            self.running.update(data)
        elif self.collector is not None:
            self.collector.update(data)

    def settle(self, size: int) -> dict[str, Any] | None:
        """The part's link once its ``size`` bytes have all passed (before it
        is stored: the next part may continue it at once), if they continued
        the chain; ``seal`` writes this same link."""
        running = self.running
        if self.written is None and running is not None and running.offset == self.start + size:
            self.written = digest_chain.link(running.saved(), self.prev)
        return self.written

    def seal(self, record: UploadRecord, written: int) -> None:
        """Before the part's record is saved with its ``written`` bytes: its
        link if they continued the chain, else which request stored it."""
        if self.running is not None:
            if self.settle(written) is not None:
                record.extra[digest_chain.CHAIN] = self.written
        else:
            record.extra[_PUT] = self.put


class Chaining:
    def __init__(self, state: StateStore) -> None:
        self._state = state
        self._held = HeldParts(PENDING_MAX, PENDING_TTL)

    async def begin(
        self, before: str | None, length: int | None, tip: dict[str, Any] | None = None
    ) -> Link:
        """The link of a part arriving after part ``before`` (None: it is
        part 1, and starts the chain); ``tip``: ``before``'s link, known
        before it is stored (``Link.settle``)."""
        if before is None:
            return Link(digests.Running.fresh(_ALGORITHMS), None, False)
        found = tip or digest_chain.of(await self._state.get(before))
        running = digests.Running.load(found["state"], _ALGORITHMS) if found else None
        if found is None or running is None:
            return Link(None, None, self._held.room(length))
        return Link(running, str(found["id"]), False)

    async def hold(self, part_id: str, link: Link, budget: MemoryBudget) -> None:
        """Keep the bytes ``link`` collected of the stored part ``part_id``
        until the chain reaches it, if memory can be spared now."""
        self._held.drop(part_id)
        if link.collector is not None:
            await self._held.hold(part_id, link.put, link.collector.chunks, budget)

    async def extend(self, ids: Callable[[int], str], number: int, link: Link) -> None:
        """Carry the chain from part ``number`` (stored with ``link``)
        through the parts after it whose bytes are held here (``ids(n)``:
        part n's id). Parts held elsewhere, or chained as they came, carry
        it on themselves: whichever of two neighbours is stored last sees
        the other (held before it reads its predecessor's link; a link
        written before the successor's bytes are looked for)."""
        n, tip = number, link.written
        if tip is None and number > 1 and link.collector is not None:
            n, tip = number - 1, digest_chain.of(await self._state.get(ids(number - 1)))
        while tip is not None and self._held.holds(ids(n + 1)):
            pid = ids(n + 1)
            record = await self._state.get(pid)
            if record is None:
                return
            found = self._carry(record, tip, self._held.take(pid, str(record.extra.get(_PUT))))
            self._held.drop(pid)
            # compare-and-set, without the part's lock (taking it would cut a
            # re-sent part's body short): a part replaced since it was read
            # stays as it is
            if found is None or not await self._state.save(record):
                return
            tip, n = found, n + 1

    @staticmethod
    def _carry(
        record: UploadRecord, tip: dict[str, Any], chunks: list[bytes] | None
    ) -> dict[str, Any] | None:
        """``record``'s link after ``tip`` from ``chunks``, its held bytes
        (None: those held are of another request's part), set on it."""
        running = digests.Running.load(tip["state"], _ALGORITHMS)
        if chunks is None or running is None or record.status is not Status.COMPLETE:
            return None
        if digest_chain.CHAIN in record.extra:
            return None
        start = running.offset
        for chunk in chunks:
            running.update(chunk)
        if running.offset != start + record.offset:
            return None
        found = digest_chain.link(running.saved(), str(tip["id"]))
        record.extra[digest_chain.CHAIN] = found
        return found

    def drop(self, part_id: str) -> None:
        self._held.drop(part_id)

    def drop_session(self, session_id: str) -> None:
        """Drop the held parts of a session that ended."""
        self._held.drop_session(session_id)
