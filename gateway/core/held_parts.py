"""Bytes of stored parts kept in one process's memory for a while, so that
what comes next can use them without reading them back from the store
(``joining.py``: short parts waiting to be joined; ``chaining.py``: parts
waiting for the SHA-256 chain to reach them).

Each entry carries a tag saying which version of the part its bytes are
(its MD5, or the request that stored it): ``take`` gives them only for that
tag. Bytes are taken from the memory budget only when it has them to spare
at once (held bytes are an optimisation, never a reason to wait), at most
``limit`` per store, and dropped when used, replaced, or after ``ttl``
seconds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from backends.base import MemoryBudget


@dataclass
class _Held:
    tag: str
    budget: MemoryBudget
    chunks: list[bytes]
    size: int
    since: float = field(default_factory=time.monotonic)


class HeldParts:
    def __init__(self, limit: int, ttl: float) -> None:
        self.limit = limit
        self._ttl = ttl
        self._held: dict[str, _Held] = {}
        self.size = 0

    def room(self, size: int | None) -> bool:
        """Whether ``size`` more bytes may be held now."""
        return size is not None and self.size + size <= self.limit

    async def hold(self, part_id: str, tag: str, chunks: list[bytes], budget: MemoryBudget) -> None:
        """Keep ``chunks``, the bytes of part ``part_id`` as ``tag``, if
        memory can be spared now (replacing what was held of it)."""
        self.drop(part_id)
        self._expire()
        size = sum(len(c) for c in chunks)
        if not self.room(size):
            return
        try:
            async with asyncio.timeout(0):  # granted at once, or not at all
                await budget.acquire(size)
        except TimeoutError:
            return
        self._held[part_id] = _Held(tag, budget, chunks, size)
        self.size += size

    def take(self, part_id: str, tag: str) -> list[bytes] | None:
        """The held bytes of part ``part_id`` if they are those of ``tag``
        (held until ``drop``)."""
        held = self._held.get(part_id)
        return held.chunks if held is not None and held.tag == tag else None

    def holds(self, part_id: str) -> bool:
        return part_id in self._held

    def drop(self, part_id: str) -> None:
        held = self._held.pop(part_id, None)
        if held is not None:
            self.size -= held.size
            held.budget.release(held.size)

    def drop_session(self, session_id: str) -> None:
        """Drop the held parts of a session that ended."""
        prefix = f"{session_id}-"
        for part_id in [p for p in self._held if p.startswith(prefix)]:
            self.drop(part_id)
        self._expire()

    def _expire(self) -> None:
        limit = time.monotonic() - self._ttl
        for part_id in [p for p, h in self._held.items() if h.since < limit]:
            self.drop(part_id)
