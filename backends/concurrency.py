"""``bounded``: one call per item, a few at a time; for backends and the core."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
A = TypeVar("A")


async def bounded(items: Iterable[A], fn: Callable[[A], Awaitable[T]], limit: int) -> list[T]:
    """``fn`` over ``items`` with at most ``limit`` running; results in order;
    the first failure is raised once all have stopped."""
    semaphore = asyncio.Semaphore(limit)

    async def one(item: A) -> T:
        async with semaphore:
            return await fn(item)

    results = await asyncio.gather(*(one(i) for i in items), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]
