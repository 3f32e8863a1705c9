"""Object expiry done by the gateway (stores without ``OBJECT_EXPIRY``), on
the SQLite and the Redis state store: an object made with ``delete_at`` is
deleted by one sweeper pass once due — unless a newer upload replaced it —
and its content type is kept by the store."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from backends.base import ObjectMeta
from gateway.core.expiry import sweep_once
from gateway.core.records import Kind, Status
from gateway.core.service import UploadService
from tests.core.services import run


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
        swept = await service.state.get(gone)
        assert swept is not None and swept.status is Status.EXPIRED
        assert await content(service, "later.txt") == b"stays a while"

    run(tmp_path, state, body)


def test_newer_upload_at_the_key_is_spared(tmp_path: Path, state: dict[str, Any]) -> None:
    async def body(service: UploadService) -> None:
        old = await store(service, "k.bin", b"old", ObjectMeta(delete_at=int(time.time()) + 3600))
        await store(service, "k.bin", b"newer", None)
        service.ledger.clock = lambda: time.time() + 3601  # the hour has passed
        assert await sweep_once(service) == 1
        assert await content(service, "k.bin") == b"newer"
        assert (await service.state.get(old)).status is Status.EXPIRED  # type: ignore[union-attr]

    run(tmp_path, state, body)
