"""The digest index follows objects through the core, on the SQLite and the
Redis state store (local store): a finished object with a SHA-256 is
indexed, and loses its entry when another upload replaces it, when its
upload is terminated, and when its lifetime ends; an instant creation
copies only what the index names and the store still holds. The SHA-256
is put on the records here (the hashing of bytes is tested with it)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from backends.base import ObjectMeta
from gateway.core import object_meta
from gateway.core.digest_index import SHA256
from gateway.core.expiry import sweep_once
from gateway.core.records import Status
from gateway.core.service import UploadService
from gateway.digest_fields import DECLARED
from tests.core.services import run


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _upload(
    service: UploadService, key: str, data: bytes, meta: ObjectMeta | None = None
) -> str:
    extra = {SHA256: hashlib.sha256(data).hexdigest()}
    record = await service.create(
        protocol="tus",
        bucket="default",
        key=key,
        length=len(data),
        extra=object_meta.with_meta(extra, meta) if meta else extra,
    )
    done = await service.write(record.id, 0, _chunks(data))
    assert done.status is Status.FINISHED
    return record.id


async def _instant(service: UploadService, key: str, data: bytes) -> int:
    """A creation declaring ``data``'s digest; its offset (the length if instant)."""
    declared = {DECLARED: {"sha-256": hashlib.sha256(data).hexdigest()}}
    record = await service.create(
        protocol="tus", bucket="default", key=key, length=len(data), extra=declared
    )
    return record.offset


async def _content(service: UploadService, key: str) -> bytes:
    return b"".join([c async for c in service.read("default", key)])


def test_index_follows_replacement_termination_and_expiry(
    tmp_path: Path, state: dict[str, Any]
) -> None:
    async def body(service: UploadService) -> None:
        index = service.state
        data, other = b"the same bytes" * 1000, b"other bytes" * 999
        sha = hashlib.sha256(data).hexdigest()
        first = await _upload(service, "a.bin", data)
        entry = await index.index_get("default", "a.bin")
        assert entry is not None and (entry.sha256, entry.size) == (sha, len(data))
        assert entry.upload_id == first and entry.owner == "anonymous"

        # an instant creation copies it, and is indexed in turn
        assert await _instant(service, "b.bin", data) == len(data)
        assert await _content(service, "b.bin") == data
        assert await index.index_get("default", "b.bin") is not None

        # replaced by other bytes: the old digest no longer names a.bin
        await _upload(service, "a.bin", other)
        entry = await index.index_get("default", "a.bin")
        assert entry is not None and entry.sha256 == hashlib.sha256(other).hexdigest()
        found = await index.index_find("default", sha, len(data), "anonymous")
        assert [e.key for e in found] == ["b.bin"]

        # terminated (tus DELETE of a finished upload): out of the index, then deleted
        b_id = (await index.index_get("default", "b.bin")).upload_id  # type: ignore[union-attr]
        await service.terminate(b_id)
        assert await index.index_get("default", "b.bin") is None
        assert await service.stat_object("default", "b.bin") is None
        assert await _instant(service, "c.bin", data) == 0  # nothing left to copy

        # an object whose lifetime ended is swept out of the index too
        await _upload(service, "d.bin", data, ObjectMeta(delete_at=int(time.time()) - 1))
        assert await index.index_get("default", "d.bin") is not None
        assert await sweep_once(service) >= 1
        assert await index.index_get("default", "d.bin") is None
        assert await service.stat_object("default", "d.bin") is None

    run(tmp_path, state, body)


def test_an_entry_whose_object_vanished_is_dropped_not_copied(
    tmp_path: Path, state: dict[str, Any]
) -> None:
    async def body(service: UploadService) -> None:
        data = b"x" * 4096
        await _upload(service, "gone.bin", data)
        b = service.bucket("default")
        await b.backend.delete_object(b.backend_key("gone.bin"))  # behind the gateway's back
        assert await _instant(service, "new.bin", data) == 0
        assert await service.state.index_get("default", "gone.bin") is None

    run(tmp_path, state, body)
