"""RedisStateStore: the StateStore contract on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from gateway.core.errors import ServiceUnavailable
from gateway.core.records import Kind, UploadRecord
from gateway.core.state.redis import RecordExists, RedisStateStore
from tests.servers.ports import free_port
from tests.servers.redis import RedisServer

T = TypeVar("T")


def run(url: str, body: Callable[[RedisStateStore], Awaitable[T]]) -> T:
    async def main() -> T:
        store = RedisStateStore(url)
        await store.open()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def record(upload_id: str = "u1", expires_at: float | None = 100.0) -> UploadRecord:
    return UploadRecord(
        id=upload_id,
        protocol="tus",
        kind=Kind.UPLOAD,
        bucket="default",
        key=upload_id,
        length=10,
        expires_at=expires_at,
        backend_state={"private": 1},
    )


def test_create_get_save_compare_and_set(redis_url: str) -> None:
    async def body(store: RedisStateStore) -> None:
        rec = record()
        await store.create(rec)
        assert rec.version == 1
        got = await store.get("u1")
        assert got == rec
        a, b = await store.get("u1"), await store.get("u1")
        assert a is not None and b is not None
        a.offset = 4
        assert await store.save(a)
        assert a.version == 2
        b.offset = 7  # read the same version: must lose
        assert not await store.save(b)
        assert b.version == 1
        stored = await store.get("u1")
        assert stored is not None and stored.offset == 4 and stored.version == 2
        assert await store.get("nope") is None

    run(redis_url, body)


def test_concurrent_savers_exactly_one_wins(redis_url: str) -> None:
    async def body(store: RedisStateStore) -> None:
        await store.create(record())
        copies = [await store.get("u1") for _ in range(20)]
        for i, c in enumerate(copies):
            assert c is not None
            c.offset = i
        results = await asyncio.gather(*(store.save(c) for c in copies if c is not None))
        assert sum(results) == 1

    run(redis_url, body)


def test_create_is_idempotent_but_never_overwrites(redis_url: str) -> None:
    async def body(store: RedisStateStore) -> None:
        rec = record()
        await store.create(rec)
        await store.create(record())  # the same record again (a retried command)
        other = record()
        other.length = 99
        with pytest.raises(RecordExists):
            await store.create(other)
        got = await store.get("u1")
        assert got is not None and got.length == 10

    run(redis_url, body)


def test_expired_follows_saves_and_deletes(redis_url: str) -> None:
    async def body(store: RedisStateStore) -> None:
        await store.create(record("a", 10.0))
        await store.create(record("b", 20.0))
        await store.create(record("c", None))
        assert sorted(await store.expired(15.0)) == ["a"]
        assert sorted(await store.expired(25.0)) == ["a", "b"]
        assert len(await store.expired(25.0, limit=1)) == 1
        a = await store.get("a")
        assert a is not None
        a.expires_at = None  # finished: no longer expires
        assert await store.save(a)
        b = await store.get("b")
        assert b is not None
        b.expires_at = 30.0
        assert await store.save(b)
        assert await store.expired(25.0) == []
        assert await store.expired(31.0) == ["b"]
        await store.delete("b")
        assert await store.get("b") is None
        assert await store.expired(1e12) == []

    run(redis_url, body)


def test_kv(redis_url: str) -> None:
    async def body(store: RedisStateStore) -> None:
        assert await store.kv_get("ns", "k") is None
        await store.kv_set("ns", "k", "v1")
        await store.kv_set("ns", "k", "v2")
        await store.kv_set("other", "k", "x")
        assert await store.kv_get("ns", "k") == "v2"
        await store.kv_delete("ns", "k")
        assert await store.kv_get("ns", "k") is None
        assert await store.kv_get("other", "k") == "x"

    run(redis_url, body)


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
