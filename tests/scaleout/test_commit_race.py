"""An expired lease never lets two writers both commit: the save is a
compare-and-set on the record version (two UploadServices stand for two
instances sharing Redis and one store)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.app import close_service, open_service
from gateway.config import load_config
from gateway.core.errors import ServiceUnavailable
from gateway.core.records import Status
from gateway.core.redis_locks import RedisLocks
from gateway.core.service import UploadService

DATA = os.urandom(3 * 1024 * 1024 + 17)


async def _services(url: str, root: Path, lease: float) -> list[UploadService]:
    config = load_config(
        {
            "backends": {"default": {"type": "local", "root": str(root)}},
            "state": {"type": "redis", "url": url},
            "locks": {"type": "redis", "url": url, "lease": lease, "acquire_timeout": 5},
        }
    )
    return [await open_service(config) for _ in range(2)]


async def _one_shot(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _read_all(service: UploadService, key: str) -> bytes:
    return b"".join([chunk async for chunk in service.read("default", key)])


def test_stalled_writer_cannot_commit_after_its_lease_expired(
    redis_url: str, tmp_path: Path
) -> None:
    """A holder stalls past its lease without noticing (no renewal); a second
    instance takes the lock, writes and commits; the stalled writer's save
    then fails with a 503 and changes nothing."""

    async def main() -> None:
        a, b = await _services(redis_url, tmp_path, lease=0.3)
        assert isinstance(a.locks, RedisLocks)

        async def no_renewal(*args: object) -> None:
            await asyncio.Event().wait()

        a.locks._renew = no_renewal  # type: ignore[method-assign,assignment]
        try:
            rec = await a.create(protocol="tus", bucket="default", key="obj", length=len(DATA))
            resume = asyncio.Event()
            half = len(DATA) // 2

            async def stalled_body() -> AsyncIterator[bytes]:
                yield DATA[:half]
                await resume.wait()
                yield DATA[half:]

            writer_a = asyncio.create_task(a.write(rec.id, 0, stalled_body()))
            await asyncio.sleep(0.6)  # a's lease ran out
            done = await b.write(rec.id, 0, _one_shot(DATA))
            assert done.status is Status.FINISHED and done.offset == len(DATA)
            resume.set()
            with pytest.raises(ServiceUnavailable, match="retry"):
                await writer_a
            final = await b.state.get(rec.id)
            assert final is not None
            assert (final.version, final.status, final.offset) == (
                done.version,
                Status.FINISHED,
                len(DATA),
            )
            body = await _read_all(b, "obj")
            assert hashlib.sha256(body).digest() == hashlib.sha256(DATA).digest()
        finally:
            for s in (a, b):
                await close_service(s)

    asyncio.run(main())


def test_writer_that_lost_its_lease_stops_and_only_one_commits(
    redis_url: str, tmp_path: Path
) -> None:
    """The lease is taken over while a writer streams: renewal notices,
    ``lost`` stops the body, and of the two writers exactly one commit
    survives; the upload then completes from the committed offset."""

    async def main() -> None:
        a, b = await _services(redis_url, tmp_path, lease=0.3)
        try:
            rec = await a.create(protocol="tus", bucket="default", key="obj", length=len(DATA))
            first = 1024 * 1024

            async def endless_body() -> AsyncIterator[bytes]:
                yield DATA[:first]
                position = first
                while position < len(DATA):  # trickle until told to stop
                    await asyncio.sleep(0.05)
                    yield DATA[position : position + 1024]
                    position += 1024

            writer_a = asyncio.create_task(a.write(rec.id, 0, endless_body()))
            await asyncio.sleep(0.2)
            # another instance's token replaces a's (as after an expiry)
            assert isinstance(b.locks, RedisLocks)
            await b.locks._redis.set(f"ugw:lock:{rec.id}", "intruder", px=300)
            outcome_a: object
            try:
                outcome_a = await asyncio.wait_for(writer_a, 5.0)
            except ServiceUnavailable as exc:
                outcome_a = exc
            await asyncio.sleep(0.35)  # the intruder's lease ends
            current = await b.state.get(rec.id)
            assert current is not None
            # a stopped early and committed what it had: nobody else wrote
            assert not isinstance(outcome_a, Exception), outcome_a
            assert current.version == 2
            assert first <= current.offset < len(DATA)
            rest = DATA[current.offset :]
            done = await b.write(rec.id, current.offset, _one_shot(rest))
            assert done.status is Status.FINISHED
            body = await _read_all(b, "obj")
            assert hashlib.sha256(body).digest() == hashlib.sha256(DATA).digest()
        finally:
            for s in (a, b):
                await close_service(s)

    asyncio.run(main())
