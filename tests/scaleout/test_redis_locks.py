"""RedisLocks beyond the lock contract (``tests/core/test_lock_contract.py``):
leases, renewal, token-checked release, lost leases, Redis down — two managers
stand for two gateway instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis.asyncio as aioredis

from gateway.core.errors import Locked, ServiceUnavailable
from gateway.core.redis_locks import RedisLocks
from testservers.ports import free_port
from testservers.redis import RedisServer

T = TypeVar("T")


def run(
    url: str,
    body: Callable[[RedisLocks, RedisLocks, Any], Awaitable[T]],
    *,
    lease: float = 0.6,
    acquire_timeout: float = 2.0,
) -> T:
    """``body(instance_a, instance_b, raw_redis)``."""

    async def main() -> T:
        a = RedisLocks(url, acquire_timeout, lease)
        b = RedisLocks(url, acquire_timeout, lease)
        raw = aioredis.Redis.from_url(url)
        await a.open()
        await b.open()
        try:
            return await body(a, b, raw)
        finally:
            await a.close()
            await b.close()
            await raw.aclose()

    return asyncio.run(main())


def test_renewal_keeps_a_long_holder(redis_url: str) -> None:
    async def body(a: RedisLocks, b: RedisLocks, raw: Any) -> None:
        async with a.hold("u1") as lease:
            await asyncio.sleep(1.5)  # 5 leases
            assert not lease.lost.is_set()
            with pytest.raises(Locked):
                async with b.hold("u1", timeout=0.2):
                    pytest.fail("the lease of a live holder expired")
            assert 0 < await raw.pttl("ugw:lock:u1") <= 600
        assert await raw.exists("ugw:lock:u1") == 0

    run(redis_url, body, lease=0.3)


def test_release_is_token_checked(redis_url: str) -> None:
    async def body(a: RedisLocks, b: RedisLocks, raw: Any) -> None:
        async def no_renewal(*args: object) -> None:  # a holder stalled past its lease
            await asyncio.Event().wait()

        a._renew = no_renewal  # type: ignore[method-assign,assignment]
        async with a.hold("u1"):
            await asyncio.sleep(0.5)  # the lease ran out
            async with b.hold("u1", timeout=0.5):
                b_token = await raw.get("ugw:lock:u1")
                assert b_token is not None
            # (b released; take it again and let a release while b holds it)
            entered = asyncio.Event()
            leave = asyncio.Event()

            async def hold_b() -> None:
                async with b.hold("u1", timeout=0.5):
                    entered.set()
                    await leave.wait()

            task = asyncio.create_task(hold_b())
            await entered.wait()
            b_token = await raw.get("ugw:lock:u1")
        # a's release ran here: b's lock must still be there
        assert await raw.get("ugw:lock:u1") == b_token
        leave.set()
        await task
        assert await raw.exists("ugw:lock:u1") == 0

    run(redis_url, body, lease=0.3)


def test_taken_over_lease_sets_lost(redis_url: str) -> None:
    async def body(a: RedisLocks, b: RedisLocks, raw: Any) -> None:
        async with a.hold("u1") as lease:
            await raw.set("ugw:lock:u1", "someone-else", px=5000)
            await asyncio.wait_for(lease.lost.wait(), 1.0)
        assert await raw.get("ugw:lock:u1") == b"someone-else"  # not released by a

    run(redis_url, body, lease=0.3)


def test_unreachable_redis_sets_lost_before_the_lease_ends(
    redis_server: RedisServer, redis_url: str
) -> None:
    async def body(a: RedisLocks, b: RedisLocks, raw: Any) -> None:
        async with a.hold("u1") as lease:
            t0 = time.monotonic()
            await asyncio.to_thread(redis_server.stop)
            await asyncio.wait_for(lease.lost.wait(), 3.0)
            assert time.monotonic() - t0 < 1.0  # the lease is 1 s
            with pytest.raises(ServiceUnavailable):
                async with b.hold("u2"):
                    pass
            with pytest.raises(ServiceUnavailable):
                await b.ping()
            await asyncio.to_thread(redis_server.start)
        # back: both managers work again (and the listener resubscribed)
        async with b.hold("u2", timeout=1.0):
            pass
        for _ in range(100):
            if a._subscribed.is_set():
                break
            await asyncio.sleep(0.05)
        await a.ping()

    run(redis_url, body, lease=1.0)


def test_unreachable_redis_refuses_to_lock() -> None:
    async def body(a: RedisLocks, b: RedisLocks, raw: Any) -> None:
        with pytest.raises(ServiceUnavailable):
            async with a.hold("u1"):
                pass
        with pytest.raises(ServiceUnavailable):
            await a.ping()

    run(f"redis://127.0.0.1:{free_port()}/0", body)
