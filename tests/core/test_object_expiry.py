"""Object expiry done by the gateway (stores without ``OBJECT_EXPIRY``), on
the SQLite and the Redis state store: an object made with ``delete_at`` is
deleted by one sweeper pass once due — unless a newer upload replaced it —
and its content type is kept by the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py

from backends.base import ObjectMeta
from gateway.app import close_service, open_service
from gateway.config import load_config
from gateway.core.expiry import sweep_once
from gateway.core.records import Kind, Status
from gateway.core.service import UploadService
from tests.servers.redis import RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer(persist=False) as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"type": "sqlite", "path": str(tmp_path / "state.db")}
    server: RedisServer = request.getfixturevalue("redis_server")
    client = redis_py.Redis.from_url(server.url)
    client.flushdb()  # no records of an earlier test
    client.close()
    return {"type": "redis", "url": server.url}


def run(
    tmp_path: Path, state: dict[str, Any], body: Callable[[UploadService], Awaitable[None]]
) -> None:
    config = load_config(
        {
            "backends": {"default": {"type": "local", "root": str(tmp_path / "data")}},
            "buckets": {"default": {"backend": "default"}},
            "state": state,
            "locks": {"type": "redis", "url": state["url"]}
            if state["type"] == "redis"
            else {"type": "memory"},
        }
    )

    async def main() -> None:
        service = await open_service(config)
        try:
            await body(service)
        finally:
            await close_service(service)

    asyncio.run(main())


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def store(service: UploadService, key: str, data: bytes, meta: ObjectMeta | None) -> str:
    part = await service.create(
        protocol="test", bucket="default", key=None, length=len(data), kind=Kind.PART
    )
    await service.write(part.id, 0, _chunks(data))
    record = await service.commit_part(part.id, key, meta=meta)
    return record.id


async def content(service: UploadService, key: str) -> bytes:
    return b"".join([c async for c in service.read("default", key)])


def test_due_object_is_deleted_by_the_sweeper(tmp_path: Path, state: dict[str, Any]) -> None:
    async def body(service: UploadService) -> None:
        due = ObjectMeta(content_type="text/x-test", delete_at=int(time.time()) + 3600)
        first = await store(service, "later.txt", b"stays a while", due)
        info = await service.stat_object("default", "later.txt")
        assert info is not None and info.content_type == "text/x-test"
        record = await service.get(first)
        assert record.expires_at == due.delete_at
        assert await sweep_once(service) == 0  # not due yet

        past = ObjectMeta(delete_at=int(time.time()) - 1)
        gone = await store(service, "gone.txt", b"expires", past)
        assert await sweep_once(service) == 1
        assert await service.stat_object("default", "gone.txt") is None
        swept = await service.find(gone)
        assert swept is not None and swept.status is Status.EXPIRED
        assert await content(service, "later.txt") == b"stays a while"

    run(tmp_path, state, body)


def test_newer_upload_at_the_key_is_spared(tmp_path: Path, state: dict[str, Any]) -> None:
    async def body(service: UploadService) -> None:
        old = await store(service, "k.bin", b"old", ObjectMeta(delete_at=int(time.time()) + 3600))
        await store(service, "k.bin", b"newer", None)
        record = await service.find(old)
        assert record is not None
        record.expires_at = time.time() - 1  # the days have passed
        assert await service.state.save(record)
        assert await sweep_once(service) == 1
        assert await content(service, "k.bin") == b"newer"
        assert (await service.find(old)).status is Status.EXPIRED  # type: ignore[union-attr]

    run(tmp_path, state, body)
