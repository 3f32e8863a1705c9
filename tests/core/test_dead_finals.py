"""Parts of an assembly that dies before it is made (issue 15, class 3): a
terminated or idle-expired final releases its partials at once — each is
discarded when no other final lists it — instead of keeping them until their
own expiry; a final that gives up (a part gone) stops listing its parts but
leaves them to the client. On SQLite and Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.core.errors import UploadGone
from gateway.core.partials import PartRefs
from gateway.core.records import Kind, Status
from gateway.core.service import UploadService
from tests.core.services import run


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _part(service: UploadService, data: bytes | None) -> str:
    """A complete part holding ``data``, or (None) one still being written."""
    part = await service.create(
        protocol="tus", bucket="default", key=None, length=len(data or b"x" * 10), kind=Kind.PART
    )
    if data is not None:
        await service.write(part.id, 0, _chunks(data))
    return part.id


async def _final(service: UploadService, parts: list[str]) -> str:
    record = await service.create_assembly(
        protocol="tus", bucket="default", key=f"final-{len(parts)}-{time.time()}", parts=parts
    )
    assert record.status is Status.ACTIVE  # waiting for the unfinished part
    return record.id


async def _status(service: UploadService, upload_id: str) -> Status:
    record = await service.state.get(upload_id)
    assert record is not None
    return record.status


def _stored(tmp_path: Path) -> int:
    """Bytes under the local store's root (a discarded part's file is gone)."""
    return sum(f.stat().st_size for f in (tmp_path / "data").rglob("*") if f.is_file())


def test_a_terminated_final_releases_its_parts_but_those_another_lists(
    tmp_path: Path, state: dict[str, Any]
) -> None:
    async def body(service: UploadService) -> None:
        refs = PartRefs(service.state, service.locks)
        done, pending = await _part(service, b"d" * 1000), await _part(service, None)
        first = await _final(service, [done, pending])
        second = await _final(service, [done, pending, done])
        stored = _stored(tmp_path)

        await service.terminate(first)
        await service.settle()
        assert await _status(service, done) is Status.COMPLETE  # the second still lists it
        assert await refs.referrers(done) == [second]
        assert await refs.referrers(pending) == [second]

        await service.terminate(second)
        await service.settle()
        assert await _status(service, done) is Status.EXPIRED  # nothing lists it: discarded
        assert _stored(tmp_path) <= stored - 1000
        assert await refs.referrers(done) == []
        # a part still being written is the client's: no longer listed, not taken away
        assert await _status(service, pending) is Status.ACTIVE
        assert await refs.referrers(pending) == []

    run(tmp_path, state, body)


def test_an_expired_final_releases_its_parts(tmp_path: Path, state: dict[str, Any]) -> None:
    async def body(service: UploadService) -> None:
        done, pending = await _part(service, b"e" * 500), await _part(service, None)
        final = await _final(service, [done, pending])
        record = await service.state.get(final)
        assert record is not None and record.expires_at is not None
        due = record.expires_at + 1
        service.ledger.clock = lambda: due  # idle past its expiry
        await service.expire(final)
        await service.settle()
        assert await _status(service, final) is Status.EXPIRED
        assert await _status(service, done) is Status.EXPIRED

    run(tmp_path, state, body)


def test_a_final_that_gives_up_leaves_its_other_parts_to_the_client(
    tmp_path: Path, state: dict[str, Any]
) -> None:
    async def body(service: UploadService) -> None:
        refs = PartRefs(service.state, service.locks)
        done, pending = await _part(service, b"g" * 100), await _part(service, None)
        final = await _final(service, [done, pending])
        await service.terminate(pending)
        with pytest.raises(UploadGone):
            await service.status(final)
        await service.settle()
        assert await _status(service, done) is Status.COMPLETE
        assert await refs.referrers(done) == []  # the dead final no longer counts
        # so a new final on it, once made, discards it (nothing else lists it)
        made = await service.create_assembly(
            protocol="tus", bucket="default", key="again", parts=[done]
        )
        assert made.status is Status.FINISHED
        await service.settle()
        assert await _status(service, done) is Status.EXPIRED

    run(tmp_path, state, body)
