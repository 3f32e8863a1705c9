"""``StateStore.unfinished`` on SQLite and on a real Redis: only ACTIVE and
COMPLETE records, longest idle first, bounded by ``limit``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gateway.core.records import Kind, Status, UploadRecord
from gateway.core.state.base import StateStore
from gateway.core.state.redis import RedisStateStore
from testservers.redis import RedisServer


def _record(upload_id: str, status: Status, expires_in: float | None) -> UploadRecord:
    now = time.time()
    return UploadRecord(
        id=upload_id,
        protocol="tus",
        kind=Kind.UPLOAD,
        bucket="default",
        key=f"k/{upload_id}",
        length=10,
        offset=3,
        status=status,
        created_at=now,
        updated_at=now,
        expires_at=None if expires_in is None else now + expires_in,
    )


def test_lists_only_unfinished_uploads_longest_idle_first(
    make_store: Callable[[], StateStore],
) -> None:
    async def main() -> list[list[str]]:
        store = make_store()
        await store.open()
        try:
            records = [
                _record("active-late", Status.ACTIVE, 300),
                _record("active-soon", Status.ACTIVE, 100),
                _record("complete-part", Status.COMPLETE, 200),
                _record("finished", Status.FINISHED, None),
                _record("finished-lifetime", Status.FINISHED, 150),
                _record("tombstone", Status.TERMINATED, 50),
                _record("expired", Status.EXPIRED, 60),
            ]
            for r in records:
                await store.create(r)
            listed = [[r.id for r in await store.unfinished()]]
            listed.append([r.id for r in await store.unfinished(limit=2)])
            # a write moves an upload to the end; a finish drops it
            soon = await store.get("active-soon")
            assert soon is not None
            soon.expires_at = time.time() + 400
            assert await store.save(soon)
            late = await store.get("active-late")
            assert late is not None
            late.status, late.expires_at = Status.FINISHED, None
            assert await store.save(late)
            listed.append([r.id for r in await store.unfinished()])
            return listed
        finally:
            await store.close()

    full, first_two, after = asyncio.run(main())
    assert full == ["active-soon", "complete-part", "active-late"]
    assert first_two == ["active-soon", "complete-part"]
    assert after == ["complete-part", "active-soon"]


def test_redis_walks_past_batches_of_other_records(redis_server: RedisServer) -> None:
    """More tombstones than one batch of the expiry index before the first
    unfinished upload: it is still found."""
    from gateway.core.state import redis as redis_state

    async def main() -> list[str]:
        store = RedisStateStore(redis_server.url, prefix=f"b{time.monotonic_ns()}:")
        await store.open()
        try:
            for i in range(redis_state._BATCH + 10):
                await store.create(_record(f"gone-{i}", Status.TERMINATED, 10 + i / 1000))
            await store.create(_record("wanted", Status.ACTIVE, 100))
            return [r.id for r in await store.unfinished(limit=5)]
        finally:
            await store.close()

    assert asyncio.run(main()) == ["wanted"]


def test_pages_walk_every_unfinished_upload_either_way(
    make_store: Callable[[], StateStore],
) -> None:
    """Pages continue from the last record's (expires_at, id), ties included,
    oldest first or newest first, and skip what is not unfinished."""

    async def main() -> tuple[list[str], list[str], list[str]]:
        store = make_store()
        await store.open()
        try:
            same = time.time() + 500  # three uploads that expire at the same instant
            records = [_record(f"u{i}", Status.ACTIVE, 100 + 10 * i) for i in range(7)]
            records += [_record(f"t{i}", Status.TERMINATED, 105 + 10 * i) for i in range(7)]
            for upload_id in ("tie-b", "tie-a", "tie-c"):
                r = _record(upload_id, Status.COMPLETE, None)
                r.expires_at = same
                records.append(r)
            for r in records:
                await store.create(r)

            async def walk(newest_first: bool) -> list[str]:
                seen: list[str] = []
                after = None
                while page := await store.unfinished(2, after=after, newest_first=newest_first):
                    assert len(page) <= 2
                    seen += [r.id for r in page]
                    last = page[-1]
                    assert last.expires_at is not None
                    after = (last.expires_at, last.id)
                return seen

            whole = [r.id for r in await store.unfinished(100)]
            return whole, await walk(False), await walk(True)
        finally:
            await store.close()

    whole, oldest_first, newest_first = asyncio.run(main())
    expected = [f"u{i}" for i in range(7)] + ["tie-a", "tie-b", "tie-c"]
    assert whole == expected
    assert oldest_first == expected
    assert newest_first == expected[::-1]
