"""In-process locks: waiters ask the holder to finish; bounded waits."""

from __future__ import annotations

import asyncio

import pytest

from gateway.core.errors import Locked
from gateway.core.locks import MemoryLocks


def test_second_request_asks_the_holder_and_then_gets_the_lock() -> None:
    async def main() -> list[str]:
        locks = MemoryLocks(acquire_timeout=5)
        events: list[str] = []

        async def holder() -> None:
            async with locks.hold("u") as lease:
                events.append("holder in")
                await asyncio.wait_for(lease.release_requested.wait(), 5)
                events.append("holder asked")
            events.append("holder out")

        async def waiter() -> None:
            await asyncio.sleep(0.05)
            async with locks.hold("u"):
                events.append("waiter in")

        await asyncio.gather(holder(), waiter())
        return events

    assert asyncio.run(main()) == ["holder in", "holder asked", "holder out", "waiter in"]


def test_wait_is_bounded() -> None:
    async def main() -> None:
        locks = MemoryLocks(acquire_timeout=0.2)
        async with locks.hold("u"):
            with pytest.raises(Locked):
                async with locks.hold("u"):
                    pass
        async with locks.hold("u"):  # free again, state cleaned up
            pass
        assert not locks._locks and not locks._waiters

    asyncio.run(main())


def test_different_uploads_do_not_block_each_other() -> None:
    async def main() -> None:
        locks = MemoryLocks(acquire_timeout=0.2)
        async with locks.hold("a"), locks.hold("b"):
            pass

    asyncio.run(main())
