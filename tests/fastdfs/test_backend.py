"""FastDFSBackend quirks beyond the conformance suite: configuration, start-up
errors, resume repair, storage failure mid-write, regenerate fallback, key
mapping, assembly, memory bounds."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pydantic
import pytest

from backends.base import BackendContext, ObjectMeta, StreamInfo
from backends.errors import BackendConfigError, BackendUnavailable, InvalidState, NotFound
from backends.fastdfs import backend as backend_module
from backends.fastdfs.backend import FastDFSBackend, FastDFSConfig
from backends.registry import backend_class
from gateway.core.budget import Budget
from tests.support.memkv import MemoryKV
from testservers.fastdfs_server import FastDFSServer
from testservers.ports import free_port

from .helpers import MiB, chunks, run

KiB = 1024


class PeakBudget(Budget):
    """The gateway's budget, remembering the most ever held."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.peak = 0

    async def acquire(self, size: int) -> None:
        await super().acquire(size)
        self.peak = max(self.peak, self.used)


def make_backend(
    server: FastDFSServer, budget: Budget | None = None, **options: Any
) -> FastDFSBackend:
    config = FastDFSConfig.model_validate(
        {"type": "fastdfs", "trackers": [server.tracker_addr], **options}
    )
    context = BackendContext(kv=MemoryKV(), budget=budget or Budget(256 * MiB))
    return FastDFSBackend("test", config, context)


def with_backend(
    server: FastDFSServer, fn: Callable[[FastDFSBackend], Awaitable[None]], **options: Any
) -> None:
    async def main() -> None:
        backend = make_backend(server, **options)
        await backend.start()
        try:
            await fn(backend)
        finally:
            await backend.close()

    run(main())


async def new_stream(
    backend: FastDFSBackend, key: str | None = None, length: int | None = None
) -> StreamInfo:
    stream = StreamInfo(id=secrets.token_hex(8), key=key, length=length, offset=0)
    stream.state = await backend.create_stream(stream)
    return stream


async def write(
    backend: FastDFSBackend, stream: StreamInfo, data: bytes, chunk: int = 100_000
) -> None:
    result = await backend.write(stream, chunks(data, chunk))
    stream.offset, stream.state = result.offset, result.state


async def read_all(
    backend: FastDFSBackend, key: str, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join([c async for c in backend.read(key, start, end)])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- configuration and start-up ------------------------------------------------


def test_registry_and_config_validation() -> None:
    assert backend_class("fastdfs") is FastDFSBackend
    ok = FastDFSConfig.model_validate(
        {
            "trackers": ["10.0.0.1:22122", "[::1]:22122"],
            "group": "group_1",
            "http_base_url": "http://img/",
        }
    )
    assert ok.http_base_url == "http://img"
    bad: list[dict[str, Any]] = [
        {"trackers": []},
        {"trackers": ["nohost"]},
        {"trackers": ["h:0"]},
        {"trackers": ["h:70000"]},
        {"trackers": ["h:1"], "group": "x" * 17},
        {"trackers": ["h:1"], "group": "bad/name"},
        {"trackers": ["h:1"], "http_base_url": "ftp://x"},
        {"trackers": ["h:1"], "append_batch_size": 10},
        {"trackers": ["h:1"], "trackres": ["typo"]},
    ]
    for raw in bad:
        with pytest.raises(pydantic.ValidationError):
            FastDFSConfig.model_validate(raw)


def test_dead_tracker_is_a_clear_startup_error() -> None:
    port = free_port()
    config = FastDFSConfig(trackers=[f"127.0.0.1:{port}"], connect_timeout=1)
    backend = FastDFSBackend("photos", config, BackendContext(kv=MemoryKV(), budget=Budget(MiB)))

    async def main() -> None:
        with pytest.raises(
            BackendConfigError, match=rf"'photos'.*no FastDFS tracker answered.*:{port}"
        ):
            await backend.start()
        with pytest.raises(BackendUnavailable):
            await backend.ping()
        await backend.close()

    run(main())


def test_unknown_group_is_a_startup_error(server: FastDFSServer) -> None:
    backend = make_backend(server, group="other")

    async def main() -> None:
        with pytest.raises(BackendConfigError, match="group 'other'"):
            await backend.start()
        await backend.close()

    run(main())


# -- streams and objects --------------------------------------------------------


def test_upload_commit_read_url_delete(server: FastDFSServer) -> None:
    data = os.urandom(5 * MiB + 123)

    async def check(backend: FastDFSBackend) -> None:
        key = "photos/cat.JPG"
        stream = await new_stream(backend, key, len(data))
        appender_id = stream.state["file_id"]
        assert appender_id.endswith(".JPG") and server.files(appender=True) == [appender_id]
        for part in (data[: 2 * MiB + 1], data[2 * MiB + 1 :]):
            await write(backend, stream, part, chunk=333_333)
        stream.state = await backend.finish_stream(stream)
        info = await backend.commit(stream, key)
        assert info.size == len(data)
        # the appender file became a normal file: no bytes moved, no appender left
        assert server.files(appender=True) == []
        file_id = json.loads(backend.context.kv.data[("fastdfs", key)])["file_id"]  # type: ignore[attr-defined]
        assert file_id != appender_id and server.files() == [file_id]
        assert sha(server.path_of(file_id).read_bytes()) == sha(data)
        assert sha(await read_all(backend, key)) == sha(data)
        assert await read_all(backend, key, 7, 7 + MiB) == data[7 : 7 + MiB]
        assert await read_all(backend, key, len(data) - 5, len(data) + 100) == data[-5:]
        assert await read_all(backend, key, len(data)) == b""
        assert await backend.object_url(key, 3600) == f"http://files.example/{file_id}"
        assert await backend.object_url("missing", 3600) is None
        # a repeated commit (the core crashed before saving its state) is a no-op
        assert (await backend.commit(stream, key)).size == len(data)
        await backend.delete_object(key)
        assert await backend.stat(key) is None
        assert server.files() == []
        with pytest.raises(NotFound):
            await read_all(backend, key)

    with_backend(server, check, http_base_url="http://files.example/")


def record_requests(backend: FastDFSBackend) -> list[str]:
    """Every command the backend sends to a tracker or storage server."""
    log: list[str] = []
    real = backend.client._request

    async def request(addr: Any, cmd: Any, *args: Any, **kwargs: Any) -> bytes:
        log.append(cmd.name.lower())
        return await real(addr, cmd, *args, **kwargs)

    backend.client._request = request  # type: ignore[method-assign]
    return log


def test_a_small_stream_written_whole_is_one_upload(server: FastDFSServer) -> None:
    """A stream of known length up to a batch, all of it in one write: no
    appender file at creation, one upload of a normal file, nothing to seal;
    replacing an object deletes the old file."""
    first, second = os.urandom(MiB), os.urandom(300_000)

    async def check(backend: FastDFSBackend) -> None:
        log = record_requests(backend)
        stream = await new_stream(backend, "small.png", len(first))
        assert log == [] and server.files() == []
        await write(backend, stream, first)
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, "small.png", ObjectMeta("image/png", sha256=sha(first)))
        assert log == ["query_store_without_group_one", "upload_file"]
        file_id = stream.state["file_id"]
        assert server.files() == [file_id] and server.files(appender=True) == []
        assert file_id.endswith(".png")
        info = await backend.stat("small.png")
        assert info is not None and info.size == len(first) and info.sha256 == sha(first)
        assert info.content_type == "image/png"
        assert await read_all(backend, "small.png") == first
        got = b"".join([c async for c in backend.read_stream(stream, 3, 3000)])
        assert got == first[3:3000]
        assert (await backend.commit(stream, "small.png")).size == len(first)  # repeated
        replacing = await new_stream(backend, "small.png", len(second))
        await write(backend, replacing, second)
        replacing.state = await backend.finish_stream(replacing)
        await backend.commit(replacing, "small.png")
        assert await read_all(backend, "small.png") == second
        assert server.files() == [replacing.state["file_id"]]  # the old file went
        await backend.delete_object("small.png")
        assert server.files() == []

    with_backend(server, check)


def test_a_small_stream_cut_short_keeps_what_arrived(server: FastDFSServer) -> None:
    """Its first write brings fewer bytes than its length: an appender file
    with them, grown by the next writes and sealed at commit as any stream;
    a first write the core refuses (rollback) leaves no file."""
    data = os.urandom(MiB)

    async def check(backend: FastDFSBackend) -> None:
        stream = await new_stream(backend, "cut.bin", len(data))
        assert [c async for c in backend.read_stream(stream)] == []
        await write(backend, stream, b"")  # nothing arrived: still no file
        assert stream.state == {} and server.files() == []
        await write(backend, stream, data[:1000])
        assert server.files(appender=True) == [stream.state["file_id"]]
        await write(backend, stream, data[1000:])
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, "cut.bin")
        assert await read_all(backend, "cut.bin") == data
        assert server.files(appender=True) == [] and len(server.files()) == 1
        await backend.delete_object("cut.bin")

        refused = await new_stream(backend, "refused.bin", len(data))
        result = await backend.write(refused, chunks(data, 65536))
        assert result.offset == len(data) and result.rollback is not None
        assert len(server.files()) == 1
        await result.rollback()
        assert server.files() == []
        with pytest.raises(InvalidState, match="past the stream's length"):
            await backend.write(refused, chunks(data + b"x", 65536))
        assert server.files() == []

    with_backend(server, check)


def test_no_http_base_url_means_gateway_urls(server: FastDFSServer) -> None:
    async def check(backend: FastDFSBackend) -> None:
        stream = await new_stream(backend, "k")
        await write(backend, stream, b"abc")
        await backend.commit(stream, "k")
        assert await backend.object_url("k", 60) is None
        await backend.delete_object("k")

    with_backend(server, check)


def test_commit_replaces_and_deletes_the_old_file(server: FastDFSServer) -> None:
    async def check(backend: FastDFSBackend) -> None:
        for content in (b"first version", b"second"):
            stream = await new_stream(backend, "same/key")
            await write(backend, stream, content)
            stream.state = await backend.finish_stream(stream)
            await backend.commit(stream, "same/key")
        assert await read_all(backend, "same/key") == b"second"
        assert len(server.files()) == 1
        await backend.delete_object("same/key")

    with_backend(server, check)


def test_resume_drops_unacknowledged_bytes(server: FastDFSServer) -> None:
    data = os.urandom(3 * MiB)

    async def check(backend: FastDFSBackend) -> None:
        stream = await new_stream(backend, "resume.bin")
        await write(backend, stream, data[:MiB])
        # the store took more bytes, but the gateway died before committing them
        await backend.client.append(stream.state["file_id"], b"garbage" * 1000)
        await write(backend, stream, data[MiB:])
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, "resume.bin")
        assert sha(await read_all(backend, "resume.bin")) == sha(data)
        await backend.delete_object("resume.bin")

    with_backend(server, check)


def test_finish_trims_and_missing_bytes_are_invalid(server: FastDFSServer) -> None:
    async def check(backend: FastDFSBackend) -> None:
        stream = await new_stream(backend)
        await write(backend, stream, b"0123456789")
        file_id = stream.state["file_id"]
        await backend.client.append(file_id, b"tail never acknowledged")
        await backend.finish_stream(stream)
        assert (await backend.client.file_info(file_id)).size == 10
        # the store lost acknowledged bytes: refuse rather than guess
        await backend.client.truncate(file_id, 4)
        with pytest.raises(InvalidState, match="holds 4 bytes, 10 were acknowledged"):
            await write(backend, stream, b"more")
        with pytest.raises(InvalidState):
            await backend.finish_stream(stream)
        await backend.discard_stream(stream)
        with pytest.raises(NotFound):
            await write(backend, stream, b"x")
        assert server.files() == []

    with_backend(server, check)


def test_storage_down_mid_write_then_resume(server: FastDFSServer) -> None:
    data = os.urandom(3 * MiB)
    batch = 256 * KiB

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 64 * KiB):
            if i == MiB:
                server.stop_storage()
            yield data[i : i + 64 * KiB]

    async def check(backend: FastDFSBackend) -> None:
        stream = await new_stream(backend, "down.bin", len(data))
        with pytest.raises(BackendUnavailable) as caught:
            await backend.write(stream, body())
        partial = caught.value.partial
        assert partial is not None and 0 < partial.offset <= MiB
        assert partial.offset % batch == 0
        # the offset reported is one the store holds
        server.start_storage()
        size = (await backend.client.file_info(stream.state["file_id"])).size
        assert size >= partial.offset
        assert (
            server.path_of(stream.state["file_id"]).read_bytes()[: partial.offset]
            == data[: partial.offset]
        )
        stream.offset = partial.offset
        # storage down before a write: unavailable, nothing stored
        server.stop_storage()
        with pytest.raises(BackendUnavailable) as caught:
            await backend.write(stream, chunks(data[stream.offset :], 64 * KiB))
        assert caught.value.partial is None
        server.start_storage()
        await write(backend, stream, data[stream.offset :])
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, "down.bin")
        assert sha(await read_all(backend, "down.bin")) == sha(data)

    with_backend(server, check, append_batch_size=batch, connect_timeout=1)


def test_body_cut_short_keeps_what_arrived_and_rollback(server: FastDFSServer) -> None:
    data = os.urandom(MiB + 1000)

    async def broken() -> AsyncIterator[bytes]:
        yield data[:MiB]
        yield data[MiB:]
        raise ConnectionResetError("client went away")

    async def check(backend: FastDFSBackend) -> None:
        stream = await new_stream(backend)
        with pytest.raises(ConnectionResetError):
            await backend.write(stream, broken())
        # every byte received was stored before the error surfaced
        assert (await backend.client.file_info(stream.state["file_id"])).size == len(data)
        result = await backend.write(stream, chunks(data, 4096))
        assert result.offset == len(data) and result.rollback is not None
        await result.rollback()
        assert (await backend.client.file_info(stream.state["file_id"])).size == 0
        await backend.discard_stream(stream)

    with_backend(server, check, append_batch_size=256 * KiB)


def test_memory_is_bounded_by_two_batches(server: FastDFSServer) -> None:
    data = os.urandom(6 * MiB + 5)
    budget = PeakBudget(64 * MiB)

    async def main() -> None:
        backend = make_backend(server, budget, append_batch_size=128 * KiB)
        await backend.start()
        stream = await new_stream(backend)
        await write(backend, stream, data, chunk=MiB)  # chunks larger than a batch
        assert stream.offset == len(data)
        assert 0 < budget.peak <= 2 * 128 * KiB
        assert budget.used == 0
        await backend.discard_stream(stream)
        # a write cancelled at any moment gives its whole budget back at once
        for step in range(60):
            stream = await new_stream(backend)
            task = asyncio.create_task(backend.write(stream, chunks(data, 32 * KiB)))
            await asyncio.sleep(step * 0.0002)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert budget.used == 0, f"cancelled after {step * 0.2} ms"
            await backend.discard_stream(stream)
        assert budget.peak <= 2 * 128 * KiB
        await backend.close()

    run(main())


class WatchedBudget(Budget):
    """A budget that checks, whenever it is drawn, that the batch buffers
    alive (the bytes the backend module allocated, as tracemalloc sees them)
    are covered by what is held: a buffer kept after its budget went back
    lets memory grow past the budget under many uploads."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.overshoot = 0

    async def acquire(self, size: int) -> None:
        await super().acquire(size)
        only_backend = tracemalloc.Filter(True, backend_module.__file__)
        snapshot = tracemalloc.take_snapshot().filter_traces([only_backend])
        alive = sum(stat.size for stat in snapshot.statistics("filename"))
        self.overshoot = max(self.overshoot, alive - self.used)


def test_batch_buffers_alive_never_exceed_the_budget(server: FastDFSServer) -> None:
    batch = 256 * KiB
    budget = WatchedBudget(4 * batch)  # two writes' worth: they take turns

    async def main() -> None:
        backend = make_backend(server, budget, append_batch_size=batch)
        await backend.start()
        streams = [await new_stream(backend) for _ in range(3)]
        datas = [os.urandom(8 * batch + 7) for _ in streams]

        async def slowly(data: bytes) -> AsyncIterator[bytes]:
            # a client slower than the store: each batch is stored while
            # the next one fills, and its budget goes back in between
            for i in range(0, len(data), 32 * KiB):
                await asyncio.sleep(0.001)
                yield data[i : i + 32 * KiB]

        async def write_slowly(stream: StreamInfo, data: bytes) -> None:
            result = await backend.write(stream, slowly(data))
            stream.offset = result.offset

        tracemalloc.start()
        try:
            await asyncio.gather(*(write_slowly(s, d) for s, d in zip(streams, datas, strict=True)))
        finally:
            tracemalloc.stop()
        for stream, data in zip(streams, datas, strict=True):
            assert stream.offset == len(data)
            assert (await backend.client.file_info(stream.state["file_id"])).size == len(data)
        assert budget.used == 0
        assert budget.overshoot < 64 * KiB  # small objects, never a whole batch
        await backend.close()

    run(main())


def test_regenerate_unsupported_keeps_the_appender(old_server: FastDFSServer) -> None:
    async def check(backend: FastDFSBackend) -> None:
        stream = await new_stream(backend, "old.txt")
        await write(backend, stream, b"served by FastDFS 5")
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, "old.txt")
        assert old_server.files(appender=True) == [stream.state["file_id"]]
        assert await read_all(backend, "old.txt") == b"served by FastDFS 5"
        await backend.delete_object("old.txt")
        assert old_server.files() == []

    with_backend(old_server, check)


def test_empty_object(server: FastDFSServer) -> None:
    async def check(backend: FastDFSBackend) -> None:
        stream = await new_stream(backend, "empty")
        await backend.commit(stream, "empty")
        info = await backend.stat("empty")
        assert info is not None and info.size == 0
        assert await read_all(backend, "empty") == b""
        await backend.delete_object("empty")

    with_backend(server, check)


# -- assembly -----------------------------------------------------------------------


def test_assemble_copies_in_ranges(server: FastDFSServer) -> None:
    pieces = [os.urandom(300_000), b"", os.urandom(1), os.urandom(700_001)]

    async def check(backend: FastDFSBackend) -> None:
        streams = []
        for piece in pieces:
            stream = await new_stream(backend)
            await write(backend, stream, piece)
            stream.state = await backend.finish_stream(stream)
            streams.append(stream)
        info = await backend.assemble(streams, "joined.tar")
        assert info.size == sum(map(len, pieces))
        assert sha(await read_all(backend, "joined.tar")) == sha(b"".join(pieces))
        # the pieces stay until discarded
        assert len(server.files(appender=True)) == len(pieces)
        for stream in streams:
            await backend.discard_stream(stream)
            await backend.discard_stream(stream)
        assert server.files(appender=True) == []
        assert [f.endswith(".tar") for f in server.files()] == [True]
        await backend.delete_object("joined.tar")

    with_backend(server, check, copy_chunk_size=64 * KiB)


def test_failed_assembly_leaves_nothing(server: FastDFSServer) -> None:
    async def check(backend: FastDFSBackend) -> None:
        good = await new_stream(backend)
        await write(backend, good, b"good bytes")
        short = await new_stream(backend)
        await write(backend, short, b"0123456789")
        await backend.client.truncate(short.state["file_id"], 3)  # lost bytes
        with pytest.raises(InvalidState, match="shorter"):
            await backend.assemble([good, short], "broken")
        assert await backend.stat("broken") is None
        for stream in (good, short):
            await backend.discard_stream(stream)
        assert server.files() == []

    with_backend(server, check)
