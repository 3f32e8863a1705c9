"""The backend conformance suite: every backend of ``tests/support/targets.py``
must pass it. It drives the ``backends.base.Backend`` contract directly, the
way the core does (commit the returned state, then ``after_commit``)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
import pytest

from backends.base import Backend, BackendContext, ObjectMeta, StreamInfo, WriteResult
from backends.errors import NotFound
from backends.registry import backend_class
from gateway.core.budget import Budget
from tests.support.memkv import MemoryKV
from tests.support.targets import Target

T = TypeVar("T")
MiB = 1024 * 1024


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def open_backend(target: Target) -> Backend:
    raw = target.backend_config()
    cls = backend_class(raw["type"])
    backend = cls(
        "conformance",
        cls.config_model.model_validate(raw),
        BackendContext(kv=MemoryKV(), budget=Budget(256 * MiB)),
    )
    await backend.start()
    return backend


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def new_stream(backend: Backend, length: int | None, key: str | None = None) -> StreamInfo:
    stream = StreamInfo(id=secrets.token_hex(16), key=key, length=length, offset=0)
    stream.state = await backend.create_stream(stream)
    return stream


async def write(
    backend: Backend, stream: StreamInfo, data: bytes, chunk: int = 256 * 1024
) -> WriteResult:
    """Write and commit as the core does."""
    result = await backend.write(stream, chunks_of(data, chunk))
    stream.offset, stream.state = result.offset, result.state
    if result.after_commit:
        await result.after_commit()
    return result


async def read_all(backend: Backend, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([c async for c in backend.read(key, start, end)])


async def upload(backend: Backend, data: bytes, key: str, writes: list[int]) -> StreamInfo:
    """Write ``data`` in requests of the given sizes, finish, commit to ``key``."""
    stream = await new_stream(backend, len(data), key)
    pos = 0
    for size in writes:
        await write(backend, stream, data[pos : pos + size])
        pos += size
    assert pos == len(data) and stream.offset == len(data)
    stream.state = await backend.finish_stream(stream)
    info = await backend.commit(stream, key)
    assert info.size == len(data)
    return stream


def key_for(name: str) -> str:
    return f"conformance/{secrets.token_hex(4)}/{name}"


def with_backend(target: Target, fn: Callable[[Backend], Awaitable[None]]) -> None:
    async def main() -> None:
        backend = await open_backend(target)
        try:
            await fn(backend)
        finally:
            await backend.close()

    run(main())
    assert target.leftovers() == []


def test_one_write_round_trip(target: Target) -> None:
    data = os.urandom(3 * MiB + 17)

    async def check(backend: Backend) -> None:
        key = key_for("one.bin")
        await upload(backend, data, key, [len(data)])
        info = await backend.stat(key)
        assert info is not None and info.size == len(data)
        got = await read_all(backend, key)
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        await backend.delete_object(key)
        assert await backend.stat(key) is None

    with_backend(target, check)


def test_many_small_writes_are_packed(target: Target) -> None:
    # small client chunks (tuspy / Uppy style) across the 5 MiB S3 minimum
    data = os.urandom(11 * MiB + 5)
    writes = [256 * 1024] * 44 + [len(data) - 44 * 256 * 1024]

    async def check(backend: Backend) -> None:
        key = key_for("small.bin")
        await upload(backend, data, key, writes)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

    with_backend(target, check)


def test_odd_write_sizes(target: Target) -> None:
    data = os.urandom(13 * MiB + 3)
    writes = [
        1,
        100_000,
        6 * MiB,
        3,
        5 * MiB - 1,
        len(data) - (1 + 100_000 + 6 * MiB + 3 + 5 * MiB - 1),
    ]

    async def check(backend: Backend) -> None:
        key = key_for("odd.bin")
        await upload(backend, data, key, writes)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

    with_backend(target, check)


def test_zero_byte_object(target: Target) -> None:
    async def check(backend: Backend) -> None:
        key = key_for("empty")
        await upload(backend, b"", key, [])
        info = await backend.stat(key)
        assert info is not None and info.size == 0
        assert await read_all(backend, key) == b""
        await backend.delete_object(key)

    with_backend(target, check)


def test_commit_to_another_key(target: Target) -> None:
    data = os.urandom(MiB + 1)

    async def check(backend: Backend) -> None:
        stream = await new_stream(backend, len(data), None)
        await write(backend, stream, data)
        stream.state = await backend.finish_stream(stream)
        key = key_for("elsewhere.bin")
        await backend.commit(stream, key)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

    with_backend(target, check)


def test_copy_object_is_independent_of_its_source(target: Target) -> None:
    """Instant upload's copy: the new key holds the bytes with its own type;
    replacing or deleting either key never changes the other."""
    data = os.urandom(6 * MiB + 7)  # several parts / segments on the S3 and Swift stores
    other = os.urandom(MiB + 3)

    async def check(backend: Backend) -> None:
        source, first, second = key_for("src.bin"), key_for("copy1.bin"), key_for("copy2.bin")
        await upload(backend, data, source, [3 * MiB, len(data) - 3 * MiB])
        info = await backend.copy_object(source, first, ObjectMeta(content_type="text/plain"))
        assert info.size == len(data)
        await backend.copy_object(source, second)
        stat = await backend.stat(first)
        assert stat is not None and stat.size == len(data)
        assert stat.content_type == "text/plain"
        assert await read_all(backend, first) == data
        await upload(backend, other, source, [len(other)])  # the source replaced
        assert await read_all(backend, first) == data
        assert await read_all(backend, second) == data
        await upload(backend, other, second, [len(other)])  # a copy replaced
        assert await read_all(backend, first) == data
        assert await read_all(backend, second) == other
        await backend.delete_object(source)
        await backend.delete_object(second)
        assert await read_all(backend, first) == data
        # a copy onto an existing object replaces it; a copy of nothing is NotFound
        await backend.copy_object(first, second)
        assert await read_all(backend, second) == data
        await backend.delete_object(first)
        assert await read_all(backend, second) == data
        with pytest.raises(NotFound):
            await backend.copy_object(first, key_for("nothing.bin"))
        empty = key_for("empty")
        await upload(backend, b"", empty, [])
        await backend.copy_object(empty, first)
        assert await read_all(backend, first) == b""
        for key in (first, second, empty):
            await backend.delete_object(key)

    with_backend(target, check)


def test_range_reads(target: Target) -> None:
    data = os.urandom(2 * MiB + 10)

    async def check(backend: Backend) -> None:
        key = key_for("range.bin")
        await upload(backend, data, key, [len(data)])
        assert await read_all(backend, key, 5, 15) == data[5:15]
        assert await read_all(backend, key, MiB - 3, None) == data[MiB - 3 :]
        assert await read_all(backend, key, len(data) - 1, None) == data[-1:]
        await backend.delete_object(key)

    with_backend(target, check)


def test_interrupted_body_keeps_what_arrived(target: Target) -> None:
    data = os.urandom(7 * MiB)

    async def check(backend: Backend) -> None:
        stream = await new_stream(backend, len(data) * 2, None)
        await write(backend, stream, data[: 3 * MiB])  # the body ended early
        assert stream.offset == 3 * MiB
        rest = data[stream.offset :]
        await write(backend, stream, rest)
        assert stream.offset == len(data)
        await backend.discard_stream(stream)
        await backend.discard_stream(stream)  # idempotent

    with_backend(target, check)


def test_rollback_discards_an_uncommitted_write(target: Target) -> None:
    good, bad = os.urandom(6 * MiB), os.urandom(2 * MiB)

    async def check(backend: Backend) -> None:
        key = key_for("rollback.bin")
        stream = await new_stream(backend, len(good) + len(bad), key)
        await write(backend, stream, good[: 3 * MiB])
        before = (stream.offset, dict(stream.state))
        result = await backend.write(stream, chunks_of(bad, 65536))
        assert result.rollback is not None
        await result.rollback()  # the core refused it (checksum mismatch)
        assert (stream.offset, stream.state) == before
        await write(backend, stream, good[3 * MiB :])
        await write(backend, stream, bad)
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, key)
        assert await read_all(backend, key) == good + bad
        await backend.delete_object(key)

    with_backend(target, check)


def test_repeated_write_after_crash_is_not_duplicated(target: Target) -> None:
    # The backend stored a write but the gateway died before saving the state:
    # the client resends from the old offset; the object must not contain it twice.
    data = os.urandom(9 * MiB + 7)

    async def check(backend: Backend) -> None:
        key = key_for("crash.bin")
        stream = await new_stream(backend, len(data), key)
        await write(backend, stream, data[: 2 * MiB])
        saved = StreamInfo(stream.id, stream.key, stream.length, stream.offset, dict(stream.state))
        await backend.write(stream, chunks_of(data[2 * MiB : 8 * MiB], 65536))  # never committed
        stream = saved
        await write(backend, stream, data[2 * MiB :])
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, key)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

    with_backend(target, check)


def test_assemble_small_and_large_streams(target: Target) -> None:
    # tus-js-client parallel partials and Qiniu 4 MiB blocks are below S3's minimum
    pieces = [os.urandom(4_000_000), os.urandom(4_000_000), os.urandom(4_000_000 - 7)]
    big = [os.urandom(6 * MiB), os.urandom(5 * MiB), os.urandom(10)]

    async def check(backend: Backend) -> None:
        for case in (pieces, big, [b"only one"]):
            streams = []
            for piece in case:
                s = await new_stream(backend, len(piece))
                await write(backend, s, piece, chunk=MiB)
                s.state = await backend.finish_stream(s)
                streams.append(s)
            key = key_for("assembled.bin")
            info = await backend.assemble(streams, key)
            assert info.size == sum(len(p) for p in case)
            assert await read_all(backend, key) == b"".join(case)
            for s in streams:
                await backend.discard_stream(s)
            await backend.delete_object(key)

    with_backend(target, check)


def test_copy_of_an_assembled_object(target: Target) -> None:
    """A tus final (pieces of several streams, one listed twice) copied: the
    copy outlives the object, its streams and a second copy."""
    pieces = [os.urandom(6 * MiB), os.urandom(MiB + 5)]

    async def check(backend: Backend) -> None:
        streams = []
        for piece in pieces:
            s = await new_stream(backend, len(piece))
            await write(backend, s, piece, chunk=MiB)
            s.state = await backend.finish_stream(s)
            streams.append(s)
        key, copy, again = key_for("final.bin"), key_for("copy.bin"), key_for("again.bin")
        await backend.assemble([streams[0], streams[1], streams[0]], key)
        expected = pieces[0] + pieces[1] + pieces[0]
        assert (await backend.copy_object(key, copy)).size == len(expected)
        await backend.copy_object(copy, again)
        for s in streams:
            await backend.discard_stream(s)
        await backend.delete_object(key)
        await backend.delete_object(again)
        assert await read_all(backend, copy) == expected
        await backend.delete_object(copy)

    with_backend(target, check)


def test_read_stream_of_an_unfinished_and_a_finished_stream(target: Target) -> None:
    data = os.urandom(6 * MiB + 11)

    async def read_back(backend: Backend, stream: StreamInfo, start: int, end: int | None) -> bytes:
        return b"".join([c async for c in backend.read_stream(stream, start, end)])

    async def check(backend: Backend) -> None:
        stream = await new_stream(backend, len(data), None)
        await write(backend, stream, data[: 5 * MiB + 3], chunk=MiB)  # a tail past a part
        assert await read_back(backend, stream, 0, None) == data[: 5 * MiB + 3]
        assert await read_back(backend, stream, MiB - 1, 5 * MiB + 1) == data[MiB - 1 : 5 * MiB + 1]
        await write(backend, stream, data[5 * MiB + 3 :])
        stream.state = await backend.finish_stream(stream)
        assert await read_back(backend, stream, 0, None) == data
        assert await read_back(backend, stream, len(data) - 4, None) == data[-4:]
        await backend.discard_stream(stream)

    with_backend(target, check)


def test_deferred_length(target: Target) -> None:
    data = os.urandom(7 * MiB + 5)

    async def check(backend: Backend) -> None:
        key = key_for("deferred.bin")
        stream = await new_stream(backend, None, key)
        await write(backend, stream, data[: 3 * MiB])
        await write(backend, stream, data[3 * MiB :])
        stream.length = stream.offset  # the length is declared once all arrived
        stream.state = await backend.finish_stream(stream)
        info = await backend.commit(stream, key)
        assert info.size == len(data)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

    with_backend(target, check)


@pytest.mark.parametrize("deferred", [False, True], ids=["known-length", "deferred-length"])
def test_no_object_before_commit_unless_early(target: Target, deferred: bool) -> None:
    """A stream the core must still approve (``early_object`` False: a
    pre-finish hook, insert-only) makes nothing at its key before ``commit``
    — also a stream of unknown length that ends up small (S3 would store it
    with one PutObject as its last bytes arrive)."""
    data = os.urandom(10_000)

    async def check(backend: Backend) -> None:
        key = key_for("approved-later.bin")
        stream = StreamInfo(
            id=secrets.token_hex(16), key=key, length=None if deferred else len(data), offset=0
        )
        stream.early_object = False
        stream.state = await backend.create_stream(stream)
        await write(backend, stream, data[:4000])
        stream.length = len(data)  # declared with the last bytes
        await write(backend, stream, data[4000:])
        stream.state = await backend.finish_stream(stream)
        assert await backend.stat(key) is None  # nothing at the key yet
        info = await backend.commit(stream, key)
        assert info.size == len(data)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

    with_backend(target, check)


def test_object_url_serves_the_object(target: Target) -> None:
    """None (the gateway serves it), or a URL a business service can GET."""
    data = os.urandom(100_000)

    async def check(backend: Backend) -> None:
        key = key_for("url.bin")
        await upload(backend, data, key, [len(data)])
        url = await backend.object_url(key, 600)
        if url is not None:
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                assert resp.status == 200, (url, resp.status)
                assert await resp.read() == data
        await backend.delete_object(key)

    with_backend(target, check)


def test_missing_things(target: Target) -> None:
    async def check(backend: Backend) -> None:
        key = key_for("never")
        assert await backend.stat(key) is None
        await backend.delete_object(key)  # not an error
        with pytest.raises(NotFound):
            await read_all(backend, key)

    with_backend(target, check)


@pytest.mark.parametrize(
    "name", ["a b/ü.txt", "x/../y", "../../etc/passwd", "dir/", "./.", "q?=&%2F"]
)
def test_awkward_keys_stay_distinct_and_safe(target: Target, name: str) -> None:
    async def check(backend: Backend) -> None:
        key = f"conformance/{secrets.token_hex(4)}/{name}"
        await upload(backend, name.encode(), key, [len(name.encode())])
        assert await read_all(backend, key) == name.encode()
        await backend.delete_object(key)

    with_backend(target, check)
