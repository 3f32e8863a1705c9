"""The ``StateStore`` contract (``gateway/core/state/base.py``), run on every
implementation: SQLite (the default) and a real Redis. What only one of them
has to survive (a Redis restart, Redis unreachable) is tested beside it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gateway.core.errors import UploadExists
from gateway.core.state.base import IndexedObject, StateStore
from tests.core.services import record, run_store


def test_create_get_save_compare_and_set(make_store: Callable[[], StateStore]) -> None:
    async def body(store: StateStore) -> None:
        rec = record()
        await store.create(rec)
        assert rec.version == 1
        assert await store.get("u1") == rec
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

    run_store(make_store, body)


def test_concurrent_savers_exactly_one_wins(make_store: Callable[[], StateStore]) -> None:
    async def body(store: StateStore) -> None:
        await store.create(record())
        copies = [await store.get("u1") for _ in range(20)]
        for i, c in enumerate(copies):
            assert c is not None
            c.offset = i
        results = await asyncio.gather(*(store.save(c) for c in copies if c is not None))
        assert sum(results) == 1

    run_store(make_store, body)


def test_create_an_existing_id_is_a_core_error(make_store: Callable[[], StateStore]) -> None:
    async def body(store: StateStore) -> None:
        await store.create(record())
        await store.create(record())  # the same record again (a retried call)
        other = record()
        other.length = 99
        with pytest.raises(UploadExists):
            await store.create(other)
        assert other.version == 0
        got = await store.get("u1")
        assert got is not None and got.length == 10 and got.version == 1

    run_store(make_store, body)


def test_get_many_keeps_the_order_and_the_gaps(make_store: Callable[[], StateStore]) -> None:
    async def body(store: StateStore) -> None:
        ids = [f"p-{n}" for n in range(1200)]  # more than one batch of either store
        for upload_id in ids[::7]:
            await store.create(record(upload_id))
        got = await store.get_many(["missing", *ids])
        assert got[0] is None
        assert [r.id if r else None for r in got[1:]] == [
            i if n % 7 == 0 else None for n, i in enumerate(ids)
        ]
        assert await store.get_many([]) == []

    run_store(make_store, body)


def test_expired_follows_saves_and_deletes(make_store: Callable[[], StateStore]) -> None:
    async def body(store: StateStore) -> None:
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

    run_store(make_store, body)


def test_kv(make_store: Callable[[], StateStore]) -> None:
    async def body(store: StateStore) -> None:
        assert await store.kv_get("ns", "k") is None
        await store.kv_set("ns", "k", "v1")
        await store.kv_set("ns", "k", "v2")
        await store.kv_set("other", "k", "x")
        assert await store.kv_get("ns", "k") == "v2"
        await store.kv_delete("ns", "k")
        assert await store.kv_get("ns", "k") is None
        assert await store.kv_get("other", "k") == "x"

    run_store(make_store, body)


def test_digest_index_put_find_replace_remove(make_store: Callable[[], StateStore]) -> None:
    async def body(store: StateStore) -> None:
        sha, other = "ab" * 32, "cd" * 32
        a = IndexedObject("b1", "k/a", sha, 10, "user:alice", "u1")
        a2 = IndexedObject("b1", "k/a2", sha, 10, "user:alice", "u2")
        bob = IndexedObject("b1", "k/b", sha, 10, "user:bob", "u3")
        elsewhere = IndexedObject("b2", "k/a", sha, 10, "user:alice", "u4")
        for entry in (a, a2, bob, elsewhere):
            await store.index_put(entry)
        assert await store.index_get("b1", "k/a") == a
        mine = await store.index_find("b1", sha, 10, "user:alice")
        assert sorted(e.key for e in mine) == ["k/a", "k/a2"]
        assert {e.key for e in await store.index_find("b1", sha, 10, None)} == {
            "k/a",
            "k/a2",
            "k/b",
        }
        assert await store.index_find("b1", sha, 11, "user:alice") == []
        assert await store.index_find("b1", other, 10, None) == []
        assert len(await store.index_find("b1", sha, 10, None, limit=1)) == 1
        # an overwrite of k/a by other bytes: the old digest no longer names it
        replaced = IndexedObject("b1", "k/a", other, 3, "user:bob", "u5")
        await store.index_put(replaced)
        assert [e.key for e in await store.index_find("b1", sha, 10, "user:alice")] == ["k/a2"]
        assert await store.index_find("b1", other, 3, "user:bob") == [replaced]
        # removal on behalf of the old upload leaves the newer object's entry
        await store.index_remove("b1", "k/a", "u1")
        assert await store.index_get("b1", "k/a") == replaced
        await store.index_remove("b1", "k/a")
        assert await store.index_get("b1", "k/a") is None
        assert await store.index_find("b1", other, 3, None) == []
        await store.index_remove("b1", "nothing")  # missing: not an error
        assert [e.key for e in await store.index_find("b2", sha, 10, "user:alice")] == ["k/a"]

    run_store(make_store, body)
