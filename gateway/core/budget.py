"""The global memory budget for part buffers (DESIGN.md §4).

Backends that must hold bytes before sending them (S3 parts, packed tails)
``acquire`` the size first and ``release`` it when the buffer is gone; when
the budget is spent, new data waits (back-pressure on the client) instead of
growing memory. Peak buffer memory is bounded by the budget, whatever the
number or size of uploads.
"""

from __future__ import annotations

import asyncio


class Budget:
    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._cond = asyncio.Condition()

    async def acquire(self, size: int) -> None:
        # a request larger than the whole budget gets it alone, never deadlocks
        size = min(size, self.total)
        async with self._cond:
            await self._cond.wait_for(lambda: self.used + size <= self.total)
            self.used += size

    def release(self, size: int) -> None:
        size = min(size, self.total)
        self.used -= size
        loop_cond = self._cond

        async def notify() -> None:
            async with loop_cond:
                loop_cond.notify_all()

        asyncio.get_running_loop().create_task(notify())
