"""Bytes of one request kept in memory until the request decides where they
go (``Uploads.put``: a small Qiniu form file, checked before it is stored).

Every byte held is taken from the global memory budget first and given back
by ``release`` (once, whatever happens): many requests holding files wait
for memory (503 with ``Retry-After`` past ``memory_budget_wait``) instead of
growing it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from backends.base import MemoryBudget
from gateway.core.ledger import backend_errors


class HeldBytes:
    def __init__(self, budget: MemoryBudget) -> None:
        self._budget = budget
        self.chunks: list[bytes] = []
        self.size = 0
        self._taken = 0

    async def add(self, chunk: bytes) -> None:
        """Keep ``chunk`` (after its size was granted by the budget)."""
        with backend_errors():  # the budget spent for too long: 503
            await self._budget.acquire(len(chunk))
        self._taken += len(chunk)
        self.chunks.append(chunk)
        self.size += len(chunk)

    async def body(self) -> AsyncIterator[bytes]:
        """The bytes, in order (held until ``release``)."""
        for chunk in self.chunks:
            yield chunk

    def release(self) -> None:
        """Drop the bytes and give their budget back."""
        self.chunks = []
        if self._taken:
            self._budget.release(self._taken)
            self._taken = 0
