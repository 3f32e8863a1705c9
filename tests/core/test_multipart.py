"""Multipart sessions in the core (``gateway/core/multipart.py``) on a real
local store and both state stores: what a part costs (locks, reads, saves),
verification before sealing, replacing, listing past a read batch, abort."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.core.digests import SHA256
from gateway.core.errors import ChecksumMismatch, NoSuchSession
from gateway.core.multipart import Part, Session
from gateway.core.records import Status
from gateway.core.service import UploadService
from tests.core.services import run


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


class Calls:
    """Counts calls of some methods of a live object (the real ones run)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def watch(self, obj: Any, *names: str) -> None:
        for name in names:
            real: Callable[..., Any] = getattr(obj, name)

            def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
                self.counts[_name] = self.counts.get(_name, 0) + 1
                return _real(*args, **kwargs)

            setattr(obj, name, counted)

    def take(self) -> dict[str, int]:
        counts, self.counts = self.counts, {}
        return counts


async def _put(service: UploadService, session: Session, number: int, data: bytes) -> Part:
    return await service.multipart.put_part(
        session, number, _chunks(data), content_length=len(data)
    )


async def _object(service: UploadService, key: str) -> bytes:
    return b"".join([c async for c in service.read("default", key)])


def test_a_part_takes_one_lock_two_reads_two_saves(tmp_path: Path, state: dict[str, Any]) -> None:
    async def body(service: UploadService) -> None:
        mp = service.multipart
        session = await mp.open(protocol="test", bucket="default", key="k", ttl=600)
        calls = Calls()
        calls.watch(service.state, "get", "create", "save")
        calls.watch(service.locks, "hold")
        one, two = os.urandom(300_000), os.urandom(1000)

        # as a request does: the session it names, then the part
        session = await mp.session(session.id, "default", "test")
        part = await _put(service, session, 1, b"first try")
        assert calls.take() == {"hold": 1, "get": 2, "create": 1, "save": 1}
        session = await mp.session(session.id, "default", "test")
        part = await _put(service, session, 1, one)  # a re-sent part replaces the first
        assert calls.take() == {"hold": 1, "get": 2, "save": 2}
        assert (part.number, part.size, part.etag) == (1, len(one), hashlib.md5(one).hexdigest())
        last = await _put(service, session, 2, two)

        async with mp.completing(session.id, "default", "test") as held:
            assert await mp.parts(held, [1, 2, 3]) == [part, last, None]
            await mp.complete(held, [part, last], "k")
        assert await _object(service, "k") == one + two
        with pytest.raises(NoSuchSession):
            await mp.session(session.id, "default", "test")

    run(tmp_path, state, body)


def test_a_part_is_verified_before_it_is_sealed(tmp_path: Path, state: dict[str, Any]) -> None:
    async def body(service: UploadService) -> None:
        mp = service.multipart
        session = await mp.open(protocol="test", bucket="default", key=None, ttl=600)
        backend = service.bucket("default").backend
        calls = Calls()
        calls.watch(backend, "finish_stream", "discard_stream")
        data = b"x" * 5000
        for wrong in ({"content_md5": hashlib.md5(b"other").digest()}, {"crc32": 1}):
            with pytest.raises(ChecksumMismatch):
                await mp.put_part(session, 1, _chunks(data), content_length=len(data), **wrong)
            assert calls.take() == {"discard_stream": 1}  # never sealed, dropped
            record = await service.state.get(f"{session.id}-1")
            assert record is not None and record.status is Status.TERMINATED
            assert await mp.parts(session, [1]) == [None]
        assert not list((tmp_path / "data").rglob(".tmp-*"))  # nothing left in the store

        md5 = hashlib.md5(data).digest()
        part = await mp.put_part(session, 1, _chunks(data), content_length=None, content_md5=md5)
        assert part.size == len(data)  # deferred length: the body's
        assert calls.take() == {"finish_stream": 1}

    run(tmp_path, state, body)


def test_listing_and_abort(tmp_path: Path, state: dict[str, Any]) -> None:
    async def body(service: UploadService) -> None:
        mp = service.multipart
        session = await mp.open(protocol="test", bucket="default", key=None, ttl=600)
        for number in (1, 3, 2500):  # 2500: past the first batch of ids read
            await _put(service, session, number, f"part {number}".encode())
        parts, more = await mp.list_parts(session, 0, 2)
        assert [p.number for p in parts] == [1, 3] and more
        parts, more = await mp.list_parts(session, 3, 2)
        assert [p.number for p in parts] == [2500] and not more
        with pytest.raises(NoSuchSession):
            await mp.session(session.id, "other-bucket", "test")

        await mp.abort(session.id, "default", "test")
        with pytest.raises(NoSuchSession):
            await mp.session(session.id, "default", "test")
        for number in (1, 3, 2500):
            record = await service.state.get(f"{session.id}-{number}")
            assert record is not None and record.status is Status.TERMINATED
        assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]

    run(tmp_path, state, body)


def test_sha256_is_chained_through_the_parts(tmp_path: Path, state: dict[str, Any]) -> None:
    """The object's SHA-256 without reading it back when its parts came in
    order, even overlapping (part 1 finishing last); read back, and right,
    where the chain is broken (a part sent again, a part left out)."""

    async def body(service: UploadService) -> None:
        mp = service.multipart
        events: list[tuple[str, str | None]] = []
        service.ledger.events.listeners.append(
            lambda event, record: events.append((event, record.extra.get(SHA256)))
        )
        p = {n: os.urandom(300_000 + n) for n in (1, 2, 3)}
        whole = hashlib.sha256(p[1] + p[2] + p[3]).hexdigest()
        calls = Calls()
        calls.watch(service.bucket("default").backend, "read_stream")
        session = await mp.open(protocol="test", bucket="default", key=None, ttl=600)
        others_done = asyncio.Event()

        async def slow_first() -> AsyncIterator[bytes]:
            yield p[1][:1000]
            await others_done.wait()  # parts 2 and 3 are stored meanwhile
            yield p[1][1000:]

        async def others() -> list[Part]:
            parts = [await _put(service, session, n, p[n]) for n in (3, 2)]
            others_done.set()
            return parts

        first, (third, second) = await asyncio.gather(
            mp.put_part(session, 1, slow_first(), content_length=len(p[1])), others()
        )
        async with mp.completing(session.id, "default", "test") as held:
            await mp.complete(held, [first, second, third], "chained")
        assert await _object(service, "chained") == p[1] + p[2] + p[3]
        assert ("post-finish", whole) in events
        assert not [e for e in events if e[0] == "digest-reread"]
        assert calls.take() == {}  # nothing read back for the SHA-256

        events.clear()
        session = await mp.open(protocol="test", bucket="default", key=None, ttl=600)
        parts = {n: await _put(service, session, n, p[n]) for n in (1, 2, 3)}
        parts[2] = await _put(service, session, 2, p[3])  # sent again, other bytes
        async with mp.completing(session.id, "default", "test") as held:
            await mp.complete(held, [parts[1], parts[2], parts[3]], "resent")
        assert ("post-finish", hashlib.sha256(p[1] + p[3] + p[3]).hexdigest()) in events
        assert [e[0] for e in events].count("digest-reread") == 1
        assert calls.take() == {"read_stream": 1}  # part 3 read back

        events.clear()
        session = await mp.open(protocol="test", bucket="default", key=None, ttl=600)
        parts = {n: await _put(service, session, n, p[n]) for n in (1, 2, 3)}
        async with mp.completing(session.id, "default", "test") as held:
            await mp.complete(held, [parts[1], parts[3]], "subset")
        assert ("post-finish", hashlib.sha256(p[1] + p[3]).hexdigest()) in events
        assert [e[0] for e in events].count("digest-reread") == 1
        assert calls.take() == {"read_stream": 1}

    run(tmp_path, state, body)
