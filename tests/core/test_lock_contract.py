"""The ``LockManager`` contract (``gateway/core/locks.py``), run on every
implementation: in memory (one gateway) and on a real Redis (two gateway
instances sharing it). What only Redis has (leases, renewal, token-checked
release, Redis down) is tested in ``tests/scaleout/test_redis_locks.py``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from gateway.core.errors import Locked
from gateway.core.locks import LockManager

Body = Callable[[LockManager, LockManager], Awaitable[None]]


def run(make_locks: Callable[[], LockManager], body: Body) -> None:
    """``body(a, b)``: the managers of two gateways (one and the same in memory)."""

    async def main() -> None:
        a, b = make_locks(), make_locks()
        managers = {id(a): a, id(b): b}.values()
        for locks in managers:
            await locks.open()
            await locks.ping()
        try:
            await body(a, b)
        finally:
            for locks in managers:
                await locks.close()

    asyncio.run(main())


def test_exclusive_bounded_wait_and_free_again(make_locks: Callable[[], LockManager]) -> None:
    async def body(a: LockManager, b: LockManager) -> None:
        async with a.hold("u"):
            t0 = time.monotonic()
            with pytest.raises(Locked):
                async with b.hold("u", timeout=0.2):
                    pytest.fail("two holders")
            assert 0.15 < time.monotonic() - t0 < 1.5
            async with b.hold("other", timeout=0.2):  # other names are independent
                pass
        async with b.hold("u", timeout=0.2):  # free again
            pass

    run(make_locks, body)


def test_a_waiter_asks_the_holder_to_finish(make_locks: Callable[[], LockManager]) -> None:
    async def body(a: LockManager, b: LockManager) -> None:
        order: list[str] = []

        async def holder() -> None:
            async with a.hold("u") as lease:
                order.append("holder in")
                await asyncio.wait_for(lease.release_requested.wait(), 2.0)
                order.append("holder asked")
            order.append("holder out")

        task = asyncio.create_task(holder())
        while "holder in" not in order:
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        async with b.hold("u") as lease:
            order.append("waiter in")
            waited = time.monotonic() - t0
            assert not lease.release_requested.is_set()
        await task
        assert order == ["holder in", "holder asked", "holder out", "waiter in"]
        assert waited < 1.0  # woken by the release, not by a timeout

    run(make_locks, body)


def test_a_cancelled_waiter_leaves_no_lock(make_locks: Callable[[], LockManager]) -> None:
    async def body(a: LockManager, b: LockManager) -> None:
        async def wait_for_it() -> None:
            async with b.hold("u", timeout=5.0):
                pytest.fail("got a held lock")

        async with a.hold("u"):
            task = asyncio.create_task(wait_for_it())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        async with b.hold("u", timeout=0.2):
            pass

    run(make_locks, body)
