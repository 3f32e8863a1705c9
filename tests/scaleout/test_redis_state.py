"""RedisStateStore beyond the StateStore contract (``tests/core/test_state_contract.py``):
Redis unreachable, Redis restarted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway.core.errors import ServiceUnavailable
from gateway.core.state.redis import RedisStateStore
from tests.core.services import record, run_store
from testservers.ports import free_port
from testservers.redis import RedisServer


def run(url: str, body: Callable[[RedisStateStore], Awaitable[None]]) -> None:
    run_store(lambda: RedisStateStore(url), body)


def test_unreachable_redis_is_service_unavailable() -> None:
    async def body(store: RedisStateStore) -> None:
        with pytest.raises(ServiceUnavailable):
            await store.ping()
        with pytest.raises(ServiceUnavailable):
            await store.get("u1")
        rec = record()
        with pytest.raises(ServiceUnavailable):
            await store.save(rec)
        assert rec.version == 0  # unchanged after a failed save

    run(f"redis://127.0.0.1:{free_port()}/0", body)


def test_survives_a_redis_restart(redis_server: RedisServer, redis_url: str) -> None:
    async def body(store: RedisStateStore) -> None:
        await store.create(record())
        await asyncio.to_thread(redis_server.stop)
        with pytest.raises(ServiceUnavailable):
            await store.get("u1")
        await asyncio.to_thread(redis_server.start)
        got = await store.get("u1")  # new connection, data kept (AOF)
        assert got is not None and got.version == 1
        got.offset = 3
        assert await store.save(got)

    run(redis_url, body)
