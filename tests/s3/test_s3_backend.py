"""S3 quirks below the conformance suite: start-up errors, configuration,
part sizes, memory bounds, the two assembly paths, tail merging, recovery
of an interrupted finish, and (Swift) no orphaned segments."""

from __future__ import annotations

import asyncio
import os
import zlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import pytest
import requests
from pydantic import ValidationError

from backends.base import BackendContext, StreamInfo
from backends.errors import BackendConfigError, BackendError, BackendUnavailable, InvalidState
from backends.s3 import S3Backend, S3Config
from backends.s3.parts import ForwardedBody
from backends.s3.state import StreamState
from backends.s3.store import PacedBody, crc32_b64
from gateway.core.budget import Budget
from tests.support.memkv import MemoryKV
from tests.support.targets import S3Target

T = TypeVar("T")
MiB = 1024 * 1024


class PeakBudget(Budget):
    """A budget that remembers its highest use."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.peak = 0

    async def acquire(self, size: int) -> None:
        await super().acquire(size)
        self.peak = max(self.peak, self.used)


def backend_for(
    target: S3Target, budget: Budget | None = None, name: str = "quirks", **options: Any
) -> S3Backend:
    raw = {**target.backend_config(), **options}
    context = BackendContext(kv=MemoryKV(), budget=budget or Budget(256 * MiB))
    return S3Backend(name, S3Config.model_validate(raw), context)


def run_with(backend: S3Backend, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    async def main() -> T:
        await backend.start()
        try:
            return await fn()
        finally:
            await backend.close()

    return asyncio.run(main())


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def write_all(backend: S3Backend, stream: StreamInfo, data: bytes, size: int) -> None:
    result = await backend.write(stream, chunks(data, size))
    stream.offset, stream.state = result.offset, result.state
    if result.after_commit:
        await result.after_commit()


async def finished_stream(backend: S3Backend, data: bytes, key: str | None = None) -> StreamInfo:
    stream = StreamInfo(os.urandom(16).hex(), key, len(data), 0)
    stream.state = await backend.create_stream(stream)
    await write_all(backend, stream, data, MiB)
    stream.state = await backend.finish_stream(stream)
    return stream


async def nothing() -> None:
    pass


async def read_all(backend: S3Backend, key: str) -> bytes:
    return b"".join([c async for c in backend.read(key)])


# -- configuration ---------------------------------------------------------------


def test_config_sizes_durations_and_checks() -> None:
    c = S3Config.model_validate(
        {
            "bucket": "b",
            "part_size": "16MiB",
            "min_part_size": "5MB",
            "url": {"mode": "presigned", "ttl": "1h"},
        }
    )
    assert (c.part_size, c.min_part_size) == (16 * MiB, 5_000_000)
    assert c.url.mode == "presigned" and c.url.ttl == 3600
    for bad in (
        {"part_size": "1MiB"},  # below min_part_size
        {"part_size": "8 parsecs"},
        {"url": {"mode": "public"}},  # needs base_url
        {"colour": "blue"},
        {"access_key": "only-half"},
    ):
        with pytest.raises(ValidationError):
            S3Config.model_validate({"bucket": "b", **bad})


def test_a_buffered_body_goes_out_in_drained_slices() -> None:
    # the chunks are sent as they are, never joined, at most 256 KiB per
    # write (the client drains between writes); a retry sends them again
    chunks: list[bytes | memoryview] = [
        os.urandom(600 * 1024),
        b"",
        memoryview(os.urandom(300_000)),
    ]
    body = PacedBody(chunks)
    assert len(body) == 600 * 1024 + 300_000
    body.seek(0)

    class Writer:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        async def write(self, data: bytes | memoryview) -> None:
            self.writes.append(bytes(data))

    for _ in range(2):
        writer = Writer()
        asyncio.run(body.write(writer))  # type: ignore[arg-type]
        assert b"".join(writer.writes) == b"".join(chunks)
        assert max(len(w) for w in writer.writes) == 256 * 1024
    writer = Writer()
    asyncio.run(body.write_with_length(writer, 700 * 1024))  # type: ignore[arg-type]
    assert b"".join(writer.writes) == b"".join(chunks)[: 700 * 1024]


def test_part_size_grows_to_fit_max_parts() -> None:
    c = S3Config.model_validate({"bucket": "b", "max_parts": 1000})
    assert c.part_size_for(None) == 8 * MiB
    assert c.part_size_for(8000 * MiB) == 8 * MiB
    grown = c.part_size_for(20_000 * MiB)
    assert grown * 1000 >= 20_000 * MiB and grown > 8 * MiB
    assert c.object_limit == 1000 * 5 * 1024 * MiB


# -- start-up ------------------------------------------------------------------------


def test_missing_bucket_is_a_config_error(s3_target: S3Target) -> None:
    backend = backend_for(s3_target, create_bucket=False, bucket=f"absent-{os.getpid()}")
    with pytest.raises(BackendConfigError, match=r"does not exist.*create_bucket"):
        run_with(backend, nothing)


def test_bad_credentials_are_a_config_error(swift_target: S3Target) -> None:
    backend = backend_for(swift_target, secret_key="not-the-secret")
    with pytest.raises(BackendConfigError, match="access denied"):
        run_with(backend, nothing)


def test_unreachable_store_is_unavailable(s3_target: S3Target) -> None:
    from testservers.ports import free_port

    backend = backend_for(s3_target, endpoint_url=f"http://127.0.0.1:{free_port()}", max_attempts=1)
    with pytest.raises(BackendUnavailable, match="did not answer"):
        run_with(backend, nothing)


# -- writing ---------------------------------------------------------------------------


def test_memory_stays_within_parts_in_flight(s3_target: S3Target) -> None:
    budget = PeakBudget(256 * MiB)
    backend = backend_for(s3_target, budget, part_size="5MiB", max_concurrency=2)
    data = os.urandom(41 * MiB)

    async def check() -> None:
        key = f"quirks/{os.urandom(4).hex()}"
        stream = await finished_stream(backend, data, key)
        assert len(StreamState.from_json(stream.state).parts) == 9
        await backend.commit(stream, key)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

    run_with(backend, check)
    assert 0 < budget.peak <= 5 * MiB * (2 + 1)
    assert budget.used == 0
    assert s3_target.leftovers() == []


def test_tail_pieces_are_merged_past_the_limit(s3_target: S3Target) -> None:
    backend = backend_for(s3_target, max_tail_pieces=3)
    data = os.urandom(10 * MiB + 77)

    async def check() -> None:
        key = f"quirks/{os.urandom(4).hex()}"
        stream = StreamInfo(os.urandom(16).hex(), key, len(data), 0)
        stream.state = await backend.create_stream(stream)
        pos = 0
        for size in [100_000] * 12 + [len(data) - 1_200_000]:
            await write_all(backend, stream, data[pos : pos + size], 64 * 1024)
            pos += size
            assert len(StreamState.from_json(stream.state).tail) <= 3
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, key)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

    run_with(backend, check)
    assert s3_target.leftovers() == []


def test_finish_interrupted_before_the_state_was_saved(s3_target: S3Target) -> None:
    backend = backend_for(s3_target)
    data = os.urandom(9 * MiB + 5)  # one part and a tail

    async def check() -> None:
        key = f"quirks/{os.urandom(4).hex()}"
        stream = StreamInfo(os.urandom(16).hex(), key, len(data), 0)
        stream.state = await backend.create_stream(stream)
        await write_all(backend, stream, data, MiB)
        unsaved = dict(stream.state)
        await backend.finish_stream(stream)  # then the gateway died
        stream.state = await backend.finish_stream(stream)  # the next request repeats it
        assert stream.state != unsaved
        await backend.commit(stream, key)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

    run_with(backend, check)
    assert s3_target.leftovers() == []


# -- streams shorter than a part ----------------------------------------------------------


def test_a_short_stream_is_one_put_object(
    s3_target: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream no longer than a part never opens a multipart upload:
    shorter writes keep tail pieces, the write that completes it stores the
    whole object with its type, and finishing moves no bytes."""
    backend = backend_for(s3_target)
    data = os.urandom(3 * MiB + 7)
    puts: list[str] = []
    real_put = backend.store.put

    async def counting_put(key: str, body: Any, *args: Any, **kwargs: Any) -> str:
        puts.append(key)
        return await real_put(key, body, *args, **kwargs)

    async def no_multipart(*_: Any) -> str:
        raise AssertionError("a multipart upload for a short stream")

    monkeypatch.setattr(backend.store, "put", counting_put)
    monkeypatch.setattr(backend.store, "create_multipart", no_multipart)

    async def check() -> None:
        key = f"quirks/{os.urandom(4).hex()}"
        stream = StreamInfo(os.urandom(16).hex(), key, len(data), 0, content_type="text/x-short")
        stream.state = await backend.create_stream(stream)
        await write_all(backend, stream, data[:MiB], 64 * 1024)  # a client's short chunk
        assert len(StreamState.from_json(stream.state).tail) == 1
        assert await backend.stat(key) is None  # nothing on the key before it is whole
        await write_all(backend, stream, data[MiB:], 64 * 1024)
        assert stream.offset == len(data) and puts[-1] == key
        assert StreamState.from_json(stream.state).sealed
        puts.clear()
        stream.state = await backend.finish_stream(stream)
        info = await backend.commit(stream, key)
        assert puts == [] and info.size == len(data)
        stored = await backend.stat(key)
        assert stored is not None and stored.content_type == "text/x-short"
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

        # a Qiniu block: written whole on its temporary, gone again if the
        # core does not keep the write
        block = StreamInfo(os.urandom(16).hex(), None, 4 * MiB, 0)
        block.state = await backend.create_stream(block)
        result = await backend.write(block, chunks(os.urandom(4 * MiB)))
        assert result.offset == 4 * MiB and result.rollback is not None
        temporary = StreamState.from_json(result.state).key
        assert [c async for c in backend.read(temporary)] != []
        await result.rollback()
        assert await backend.stat(temporary) is None
        await backend.discard_stream(block)

        # a stream of exactly one part (an 8 MiB photo) is one PutObject too
        whole = os.urandom(backend.cfg.part_size)
        one_part = await finished_stream(backend, whole, f"quirks/{os.urandom(4).hex()}")
        assert one_part.key is not None and puts[-1] == one_part.key
        await backend.commit(one_part, one_part.key)
        assert await read_all(backend, one_part.key) == whole
        await backend.delete_object(one_part.key)

        empty = await finished_stream(backend, b"", f"quirks/{os.urandom(4).hex()}")
        assert empty.key is not None
        await backend.commit(empty, empty.key)
        assert await read_all(backend, empty.key) == b""
        await backend.delete_object(empty.key)

    run_with(backend, check)
    assert s3_target.leftovers() == []


def test_a_stream_of_unknown_length_opens_its_upload_when_a_part_arrives(
    s3_target: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deferred length (a Qiniu form file, tus Upload-Defer-Length): no
    multipart upload until a part's worth of bytes is there; one that stays
    small becomes its object without parts; a write not kept aborts the
    upload it opened."""
    backend = backend_for(s3_target)
    data = os.urandom(10 * MiB + 9)
    opened: list[str] = []
    real_create = backend.store.create_multipart

    async def counting_create(key: str, *args: Any) -> str:
        opened.append(key)
        return await real_create(key, *args)

    monkeypatch.setattr(backend.store, "create_multipart", counting_create)

    async def deferred(key: str | None, body: bytes) -> StreamInfo:
        stream = StreamInfo(os.urandom(16).hex(), key, None, 0, content_type="text/x-later")
        stream.state = await backend.create_stream(stream)
        for first in range(0, len(body), 3 * MiB):
            await write_all(backend, stream, body[first : first + 3 * MiB], 64 * 1024)
        stream.length = stream.offset  # declared once the body has ended
        stream.state = await backend.finish_stream(stream)
        return stream

    async def check() -> None:
        key = f"quirks/{os.urandom(4).hex()}"
        small = await deferred(key, data[:MiB])
        assert opened == []
        await backend.commit(small, key)
        stored = await backend.stat(key)
        assert stored is not None and stored.content_type == "text/x-later"
        assert await read_all(backend, key) == data[:MiB]

        form = await deferred(None, data[: 2 * MiB])  # stays one piece: no copy
        assert opened == []
        await backend.assemble([form], key)
        assert await read_all(backend, key) == data[: 2 * MiB]
        await backend.discard_stream(form)

        large = await deferred(None, data)
        assert len(opened) == 1  # when the third write filled the first part
        assert b"".join([c async for c in backend.read_stream(large)]) == data
        await backend.discard_stream(large)

        dropped = StreamInfo(os.urandom(16).hex(), None, None, 0)
        dropped.state = await backend.create_stream(dropped)
        result = await backend.write(dropped, chunks(data))
        assert result.offset == len(data) and result.rollback is not None
        await result.rollback()
        await backend.discard_stream(dropped)
        await backend.delete_object(key)

    run_with(backend, check)
    assert s3_target.leftovers() == []


# -- assembly --------------------------------------------------------------------------


def test_large_pieces_are_copied_by_the_store(
    s3_target: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = backend_for(s3_target)
    pieces = [os.urandom(5 * MiB), os.urandom(6 * MiB + 1), os.urandom(3)]
    reads: list[str] = []
    real_read = backend.store.read

    def counting_read(key: str, start: int, end: int | None) -> Any:
        reads.append(key)
        return real_read(key, start, end)

    real_get_bytes = backend.store.get_bytes

    async def counting_get_bytes(key: str, expected: int) -> bytes:
        reads.append(key)
        return await real_get_bytes(key, expected)

    monkeypatch.setattr(backend.store, "read", counting_read)
    monkeypatch.setattr(backend.store, "get_bytes", counting_get_bytes)

    async def check() -> None:
        streamed = [b"tiny", os.urandom(9 * MiB), *pieces]  # one source above a part
        for case, through_gateway in (
            (pieces, False),
            ([b"tiny", *pieces], True),
            (streamed, True),
        ):
            reads.clear()
            streams = [await finished_stream(backend, p) for p in case]
            key = f"quirks/{os.urandom(4).hex()}"
            info = await backend.assemble(streams, key)
            assert info.size == sum(map(len, case))
            assert bool(reads) is through_gateway
            assert await read_all(backend, key) == b"".join(case)
            for s in streams:
                await backend.discard_stream(s)
            await backend.delete_object(key)

    run_with(backend, check)
    assert s3_target.leftovers() == []


# -- Swift: parts overwritten or orphaned would stay as segments -------------------------


def test_no_orphaned_swift_segments(swift_target: S3Target) -> None:
    backend = backend_for(swift_target)
    data = os.urandom(17 * MiB)

    async def check() -> None:
        key = f"quirks/{os.urandom(4).hex()}"
        stream = StreamInfo(os.urandom(16).hex(), key, len(data), 0)
        stream.state = await backend.create_stream(stream)
        await write_all(backend, stream, data[: 3 * MiB], MiB)
        saved = StreamInfo(stream.id, key, len(data), stream.offset, dict(stream.state))
        await backend.write(stream, chunks(data[3 * MiB : 12 * MiB]))  # never committed
        stream = saved
        await write_all(backend, stream, data[3 * MiB :], MiB)
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, key)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

    run_with(backend, check)
    server = swift_target.server
    listing = requests.get(
        f"{server.storage_url}/{backend.cfg.bucket}+segments?format=json",
        headers={"X-Auth-Token": server.auth_token()},
        timeout=30,
    )
    assert listing.status_code in (200, 204, 404)
    assert (listing.json() if listing.status_code == 200 else []) == []
    assert swift_target.leftovers() == []


# -- parts forwarded while their bytes arrive ------------------------------------------


def _count_calls(monkeypatch: pytest.MonkeyPatch, obj: Any, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(obj, name)

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[2])  # the part number
        return await real(*args, **kwargs)

    monkeypatch.setattr(obj, name, counting)
    return calls


def test_announced_parts_are_forwarded_within_the_budget(
    s3_target: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = PeakBudget(256 * MiB)
    backend = backend_for(s3_target, budget, part_size="5MiB", max_concurrency=2)
    forwarded = _count_calls(monkeypatch, backend.store, "upload_part_streaming")
    buffered = _count_calls(monkeypatch, backend.store, "upload_part")
    data = os.urandom(23 * MiB + 9)

    async def check() -> None:
        key = f"quirks/{os.urandom(4).hex()}"
        stream = StreamInfo(os.urandom(16).hex(), key, len(data), 0)
        stream.state = await backend.create_stream(stream)
        stream.incoming = len(data)
        await write_all(backend, stream, data, 64 * 1024)
        assert stream.offset == len(data)
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, key)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

    run_with(backend, check)
    assert forwarded == [1, 2, 3, 4] and buffered == []  # the 3 MiB rest is a tail
    assert 0 < budget.peak <= 5 * MiB * (2 + 1)
    assert budget.used == 0
    assert s3_target.leftovers() == []


def test_a_body_ending_early_cancels_the_forwarded_part(s3_target: S3Target) -> None:
    backend = backend_for(s3_target)
    data = os.urandom(20 * MiB)

    async def check() -> None:
        key = f"quirks/{os.urandom(4).hex()}"
        stream = StreamInfo(os.urandom(16).hex(), key, len(data), 0)
        stream.state = await backend.create_stream(stream)
        stream.incoming = len(data)  # announced, but only 11 MiB arrive
        await write_all(backend, stream, data[: 11 * MiB], 64 * 1024)
        assert stream.offset == 11 * MiB
        st = StreamState.from_json(stream.state)
        assert len(st.parts) == 1 and st.tail_size == 3 * MiB
        stream.incoming = len(data) - stream.offset
        await write_all(backend, stream, data[stream.offset :], 64 * 1024)
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, key)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

    run_with(backend, check)
    assert s3_target.leftovers() == []


@pytest.mark.parametrize("fault", ["store error", "wrong etag"])
def test_a_failed_forwarded_part_is_sent_again(
    s3_target: S3Target, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    # an ETag is checked against the part's MD5 only when parts carry no
    # CRC32 (with one, the store verifies the bytes itself)
    checksum = "none" if fault == "wrong etag" else "auto"
    backend = backend_for(s3_target, multipart_checksum=checksum)
    real = backend.store.upload_part_streaming

    async def faulty(*args: Any) -> str:
        await real(*args)
        if fault == "store error":
            raise BackendUnavailable("injected")
        return '"0123456789abcdef0123456789abcdef"'

    monkeypatch.setattr(backend.store, "upload_part_streaming", faulty)
    resent = _count_calls(monkeypatch, backend.store, "upload_part")
    data = os.urandom(17 * MiB)

    async def check() -> None:
        key = f"quirks/{os.urandom(4).hex()}"
        stream = StreamInfo(os.urandom(16).hex(), key, len(data), 0, incoming=len(data))
        stream.state = await backend.create_stream(stream)
        await write_all(backend, stream, data, 64 * 1024)
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, key)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)

    run_with(backend, check)
    assert sorted(resent) == [1, 2]
    reason = "etag_mismatch" if fault == "wrong etag" else "forward_failed"
    assert backend.integrity.fallbacks == {reason: 2}
    assert s3_target.leftovers() == []


def _spy(monkeypatch: pytest.MonkeyPatch, obj: Any, name: str) -> list[str]:
    """The keys ``obj.name`` (a real store call) was called for."""
    calls: list[str] = []
    real = getattr(obj, name)

    async def spying(key: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(key)
        return await real(key, *args, **kwargs)

    monkeypatch.setattr(obj, name, spying)
    return calls


@pytest.mark.parametrize("case", ["whole", "cut short", "refused"])
def test_a_short_temporary_stream_is_stored_as_it_arrives(
    s3_target: S3Target, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """A Qiniu v2 4 MiB part waiting to be joined: where the store takes a
    CRC32 trailer its PutObject starts with the first bytes; a body that
    ends short stores nothing there (a tail piece instead); a refused
    forward is sent again from the buffer, counted, and not tried again
    before the store is probed again."""
    backend = backend_for(s3_target)
    if case == "refused":

        async def refusing(key: str, body: Any) -> str:
            async for _ in body:
                pass
            raise BackendError("injected refusal")

        monkeypatch.setattr(backend.store, "put_streaming", refusing)
    forwarded = _spy(monkeypatch, backend.store, "put_streaming")
    buffered = _spy(monkeypatch, backend.store, "put")
    data = os.urandom(4 * MiB + 7)
    cut = 3 * MiB if case == "cut short" else len(data)

    async def check() -> bool:
        forwards = backend.store.forwards(True)
        stream = StreamInfo(os.urandom(16).hex(), None, len(data), 0, incoming=len(data))
        stream.state = await backend.create_stream(stream)
        await write_all(backend, stream, data[:cut], 64 * 1024)
        temporary = StreamState.from_json(stream.state).key
        if cut < len(data):  # the cancelled PutObject left nothing
            assert await backend.store.head(temporary) is None
            assert StreamState.from_json(stream.state).tail_size == cut
            stream.incoming = len(data) - cut
            await write_all(backend, stream, data[cut:], 64 * 1024)
        stream.state = await backend.finish_stream(stream)
        key = f"quirks/{os.urandom(4).hex()}"
        await backend.commit(stream, key)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)
        await backend.settled()
        return forwards

    forwards = run_with(backend, check)
    if not forwards:  # Content-MD5 stores (Ceph, Swift 2.30): buffered as before
        assert forwarded == [] and len(buffered) == (2 if case == "cut short" else 1)
    elif case == "whole":
        assert len(forwarded) == 1 and buffered == []
    elif case == "cut short":  # forwarded, cancelled: a tail piece, then all of it
        assert len(forwarded) == 1 and len(buffered) == 2 and "/tails/" in buffered[0]
    else:
        assert len(forwarded) == 1 and len(buffered) == 1
        # a refusal is the trailer's, as a forwarded part's: no more
        # forwarding with checksums until the re-probe says otherwise
        assert backend.integrity.fallbacks == {"trailer_refused": 1}
        assert not backend.store.forwards(True)
    assert s3_target.leftovers() == []


@pytest.mark.parametrize("number", [1, 3])
def test_a_part_of_the_objects_upload_is_forwarded_as_it_arrives(
    s3_target: S3Target, monkeypatch: pytest.MonkeyPatch, number: int
) -> None:
    """A Qiniu v2 part going into the object's upload, whatever its number,
    is forwarded to UploadPart as its bytes arrive where the store takes
    forwarded parts — not buffered whole and sent after its last byte (parts
    after the first were, until the pipe's offsets counted from part 1)."""
    backend = backend_for(s3_target)
    forwarded = _spy(monkeypatch, backend.store, "upload_part_streaming")
    buffered = _spy(monkeypatch, backend.store, "upload_part")
    data = os.urandom(5 * MiB + 3)

    async def check() -> bool:
        upload = await backend.open_object(f"quirks/{os.urandom(4).hex()}")
        try:
            part = await backend.write_object_part(upload, number, chunks(data), len(data))
            assert part["size"] == len(data)
        finally:
            await backend.abort_object(upload)
        return backend.store.forwards(upload.get("checksum") is not None)

    forwards = run_with(backend, check)
    assert (len(forwarded), len(buffered)) == ((1, 0) if forwards else (0, 1))
    assert s3_target.leftovers() == []


def test_read_stream_serves_tails_and_finished_streams(s3_target: S3Target) -> None:
    backend = backend_for(s3_target)
    data = os.urandom(10 * MiB + 3)

    async def read(stream: StreamInfo, start: int, end: int | None) -> bytes:
        return b"".join([c async for c in backend.read_stream(stream, start, end)])

    async def check() -> None:
        stream = StreamInfo(os.urandom(16).hex(), None, len(data), 0)
        stream.state = await backend.create_stream(stream)
        for first, last in ((0, MiB), (MiB, 3 * MiB + 1), (3 * MiB + 1, 4 * MiB)):
            await write_all(backend, stream, data[first:last], 64 * 1024)
        assert len(StreamState.from_json(stream.state).tail) == 3  # a Qiniu block so far
        assert await read(stream, 0, None) == data[: 4 * MiB]
        assert await read(stream, MiB - 5, 3 * MiB + 7) == data[MiB - 5 : 3 * MiB + 7]
        await write_all(backend, stream, data[4 * MiB :], 64 * 1024)  # now a part
        with pytest.raises(InvalidState):
            await read(stream, 0, 10)
        assert await read(stream, 8 * MiB, None) == data[8 * MiB :]
        stream.state = await backend.finish_stream(stream)
        assert await read(stream, 5, 6 * MiB) == data[5 : 6 * MiB]
        await backend.discard_stream(stream)

    run_with(backend, check)
    assert s3_target.leftovers() == []


@pytest.mark.parametrize("checksum", ["auto", "CRC32", "none"])
def test_uploads_declared_with_a_checksum_algorithm(s3_target: S3Target, checksum: str) -> None:
    """``multipart_checksum``: forwarded, buffered and copied parts (and an
    assembly's copy) make the object the bytes were, with or without."""
    if checksum == "CRC32" and not s3_target.crc32_usable:
        pytest.skip(f"{s3_target.name} does not take CRC32 (tests/s3/test_field_stores.py)")
    backend = backend_for(s3_target, part_size="5MiB", multipart_checksum=checksum)
    data = os.urandom(13 * MiB + 77)

    async def check() -> None:
        key = f"quirks/{os.urandom(4).hex()}"
        stream = StreamInfo(os.urandom(16).hex(), key, len(data), 0)
        stream.state = await backend.create_stream(stream)
        stream.incoming = 6 * MiB  # part 1 forwarded, the rest a tail
        await write_all(backend, stream, data[: 6 * MiB], 64 * 1024)
        stream.incoming = None  # part 2 buffered, the rest a tail copied by the store
        await write_all(backend, stream, data[6 * MiB :], 64 * 1024)
        st = StreamState.from_json(stream.state)
        declared = checksum != "none" and s3_target.integrity != "Content-MD5"
        assert st.checksum == ("CRC32" if declared else None)
        assert all(st.checksums) is declared and len(st.checksums) == 2
        assert backend.fallbacks == 0
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, key)
        assert await read_all(backend, key) == data
        other = await finished_stream(backend, data[:MiB])
        both = f"{key}-both"
        await backend.assemble([stream, other], both)
        assert await read_all(backend, both) == data + data[:MiB]
        await backend.discard_stream(other)
        for k in (key, both):
            await backend.delete_object(k)

    run_with(backend, check)
    assert s3_target.leftovers() == []


# -- parts opened ahead of the write that fills them ----------------------------------------


def _opened_task(backend: S3Backend, stream_id: str) -> asyncio.Task[str]:
    return backend.preopen._open[stream_id].forward[1]


async def _new_stream(backend: S3Backend, length: int | None) -> StreamInfo:
    stream = StreamInfo(os.urandom(16).hex(), f"quirks/{os.urandom(4).hex()}", length, 0)
    stream.state = await backend.create_stream(stream)
    return stream


async def _write_announced(backend: S3Backend, stream: StreamInfo, data: bytes) -> None:
    stream.incoming = len(data)
    await write_all(backend, stream, data, 256 * 1024)


async def _finish_and_check(backend: S3Backend, stream: StreamInfo, data: bytes) -> None:
    assert stream.offset == len(data)
    stream.state = await backend.finish_stream(stream)
    await backend.commit(stream, str(stream.key))
    assert await read_all(backend, str(stream.key)) == data
    await backend.delete_object(str(stream.key))


def test_the_next_part_is_opened_before_its_write(
    s3_target: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = backend_for(s3_target, part_size="5MiB")
    started = _count_calls(monkeypatch, backend.store, "upload_part_streaming")
    data = os.urandom(15 * MiB + 5)

    async def check() -> None:
        stream = await _new_stream(backend, len(data))
        await asyncio.sleep(0)  # the request's task starts
        assert started == [1] and len(backend.preopen) == 1  # opened by create_stream
        for first in (0, 5 * MiB, 10 * MiB):
            await _write_announced(backend, stream, data[first : first + 5 * MiB])
            await asyncio.sleep(0)
            # the write's own part was the one opened before it; the next is open
            assert started == [1, 2, 3][: first // (5 * MiB) + 2]
        assert len(backend.preopen) == 0  # what is left is shorter than a part
        await _write_announced(backend, stream, data[15 * MiB :])
        await _finish_and_check(backend, stream, data)

    run_with(backend, check)
    assert started == [1, 2, 3]
    assert s3_target.leftovers() == []


@pytest.mark.parametrize("case", ["short write", "timeout", "other offset", "terminated"])
def test_an_opened_part_not_filled_is_cancelled(s3_target: S3Target, case: str) -> None:
    backend = backend_for(s3_target, part_size="5MiB", preopen_timeout=0.3)
    data = os.urandom(12 * MiB)

    async def check() -> None:
        stream = await _new_stream(backend, len(data))
        saved = dict(stream.state)
        await _write_announced(backend, stream, data[: 5 * MiB])
        opened = _opened_task(backend, stream.id)
        if case == "short write":
            await _write_announced(backend, stream, data[5 * MiB : 6 * MiB])
        elif case == "timeout":
            await asyncio.sleep(0.8)
        elif case == "other offset":  # the state was not committed: the write is repeated
            stream.offset, stream.state = 0, saved
            await _write_announced(backend, stream, data[: 5 * MiB])
        else:
            await backend.discard_stream(stream)
        assert len(backend.preopen) == 0 or _opened_task(backend, stream.id) is not opened
        with pytest.raises(asyncio.CancelledError):
            await opened
        if case == "terminated":
            return
        await _write_announced(backend, stream, data[stream.offset :])
        await _finish_and_check(backend, stream, data)

    run_with(backend, check)
    assert s3_target.leftovers() == []


def test_an_opened_part_left_behind_by_another_instance(s3_target: S3Target) -> None:
    """The next write goes to another gateway: its part is the one stored,
    and the first gateway's opened part, cut short, changes nothing."""
    first = backend_for(s3_target, part_size="5MiB", preopen_timeout=30)
    other = backend_for(s3_target, part_size="5MiB", bucket=first.cfg.bucket)
    data = os.urandom(10 * MiB + 3)

    async def check() -> None:
        await other.start()
        try:
            stream = await _new_stream(first, len(data))
            await _write_announced(first, stream, data[: 5 * MiB])
            opened = _opened_task(first, stream.id)
            await _write_announced(other, stream, data[5 * MiB :])
            assert not opened.done()
            await first.preopen.close()  # the first gateway stops
            assert opened.cancelled()
            await _finish_and_check(other, stream, data)
        finally:
            await other.close()

    run_with(first, check)
    assert s3_target.leftovers() == []


def test_opened_parts_are_bounded(s3_target: S3Target) -> None:
    backend = backend_for(s3_target, part_size="5MiB", preopen_parts=2)
    streams: list[StreamInfo] = []

    async def check() -> None:
        for _ in range(3):
            streams.append(await _new_stream(backend, 20 * MiB))
        assert len(backend.preopen) == 2
        for stream in streams:
            await backend.discard_stream(stream)
        assert len(backend.preopen) == 0

    run_with(backend, check)
    assert s3_target.leftovers() == []


def test_part_checksums_are_sent_and_checked(s3_target: S3Target) -> None:
    """CRC32 in a header (buffered parts) and in an aws-chunked trailer
    (forwarded parts): both servers take them; Swift refuses wrong ones."""
    if not s3_target.crc32_usable:
        pytest.skip(f"{s3_target.name} does not take CRC32 (tests/s3/test_field_stores.py)")
    backend = backend_for(s3_target, multipart_checksum="CRC32", max_attempts=1)
    data = os.urandom(5 * MiB + 7)
    good = crc32_b64(zlib.crc32(data))
    bad = crc32_b64(zlib.crc32(data) ^ 1)

    class WrongTrailer(ForwardedBody):
        @property
        def checksum(self) -> str:
            return bad

    async def forward(body: ForwardedBody, number: int) -> str:
        task = asyncio.ensure_future(store.upload_part_streaming(key, upload_id, number, body))
        for i in range(0, len(data), 100_000):
            body.queue.put_nowait(data[i : i + 100_000])
        body.queue.put_nowait(None)
        return await task

    store = backend.store
    key = f"quirks/{os.urandom(4).hex()}"
    upload_id = ""

    async def check() -> None:
        nonlocal upload_id
        upload_id = await store.create_multipart(key, None, "CRC32")
        if s3_target.integrity == "CRC32":  # the store checks them
            with pytest.raises(BackendError, match=r"BadDigest|InvalidRequest|XAmz"):
                await store.upload_part(key, upload_id, 1, [data], None, bad)
            with pytest.raises(BackendError):
                await forward(WrongTrailer(len(data), trailer=True), 1)
        body = ForwardedBody(len(data), trailer=True)
        assert body.wire_length > len(data)
        etags = [await store.upload_part(key, upload_id, 1, [data], None, good)]
        etags.append(await forward(body, 2))
        assert body.checksum == good
        await store.complete(key, upload_id, etags, [good, good])
        assert await read_all(backend, key) == data + data
        await backend.delete_object(key)

    run_with(backend, check)
    assert s3_target.leftovers() == []


def test_requests_name_the_gateway(s3_target: S3Target) -> None:
    """Every request to the store carries a fixed user agent naming the
    gateway (botocore's own is rebuilt from a dozen parts per request)."""
    backend = backend_for(s3_target)
    key = f"quirks/{os.urandom(4).hex()}"
    agents: list[str] = []

    def capture(request: Any, **_: Any) -> None:
        value = request.headers.get("User-Agent", b"")
        agents.append(value.decode() if isinstance(value, bytes) else str(value))

    async def check() -> None:
        backend.store.client.meta.events.register("before-send.s3", capture)
        await backend.store.put(key, [b"named"])
        await backend.delete_object(key)

    run_with(backend, check)
    assert len(agents) == 2
    assert all(a.startswith("upload-gateway/") and "aiobotocore/" in a for a in agents), agents


def test_put_object_carries_its_crc32(s3_target: S3Target, monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole object (a short stream, a tail piece) goes with its CRC32, not
    an MD5, and Swift refuses a wrong one."""
    import backends.s3.store as store_module

    if not s3_target.crc32_usable:
        pytest.skip(f"{s3_target.name} does not take CRC32 (tests/s3/test_field_stores.py)")
    backend = backend_for(s3_target, multipart_checksum="CRC32", max_attempts=1)
    data = os.urandom(MiB + 3)
    key = f"quirks/{os.urandom(4).hex()}"

    def wrong(_: Any) -> str:
        return crc32_b64(zlib.crc32(data) ^ 1)

    sent: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(
            {
                k.lower(): v.decode() if isinstance(v, bytes) else str(v)
                for k, v in request.headers.items()
            }
        )

    async def check() -> None:
        store = backend.store
        store.client.meta.events.register("before-send.s3.PutObject", capture)
        await store.put(key, [data])
        assert sent[0].get("x-amz-checksum-crc32") == crc32_b64(zlib.crc32(data))
        assert "content-md5" not in sent[0]
        assert await read_all(backend, key) == data
        if s3_target.integrity == "CRC32":  # the store checks them
            monkeypatch.setattr(store_module, "crc32_of", wrong)
            with pytest.raises(BackendError, match=r"BadDigest|InvalidRequest|XAmz"):
                await store.put(f"{key}-bad", [data])
        await backend.delete_object(key)

    run_with(backend, check)
    assert s3_target.leftovers() == []


def test_a_sessions_streams_are_discarded_with_one_listing(
    s3_target: S3Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streams whose ids share a session's prefix (its short parts, released
    once the object is made) are discarded with one listing of their stray
    pieces, not one per stream; a stray piece of a stream not discarded
    stays. Streams of unrelated ids are listed one by one."""
    backend = backend_for(s3_target)
    session = os.urandom(16).hex()
    s3, bucket = s3_target.client(), backend.store.bucket

    def ours() -> set[str]:
        found = s3.list_objects_v2(Bucket=bucket, Prefix=backend.cfg.temp_prefix)
        return {o["Key"] for o in found.get("Contents", []) if session in o["Key"]}

    async def stream(stream_id: str) -> StreamInfo:
        info = StreamInfo(stream_id, None, 100 * 1024, 0)
        info.state = await backend.create_stream(info)
        await write_all(backend, info, os.urandom(100 * 1024), 64 * 1024)
        info.state = await backend.finish_stream(info)
        return info

    async def check() -> None:
        streams = [await stream(f"{session}-{n}") for n in range(1, 10)]
        for n in (3, 9):  # pieces no saved state names (a write whose state was lost)
            stray = backend._piece(f"{session}-{n}", 0, 10).key
            await backend.store.put(stray, [b"0123456789"])
        assert len(ours()) == 11
        listed = _spy(monkeypatch, backend.store, "list_keys")
        await backend.discard_streams(streams[:8])
        assert len(listed) == 1
        assert ours() == {
            StreamState.from_json(streams[8].state).key,
            backend._piece(f"{session}-9", 0, 10).key,
        }
        await backend.discard_streams([streams[8]])
        listed.clear()
        unrelated = [await stream(os.urandom(16).hex()) for _ in range(2)]
        await backend.discard_streams(unrelated)
        assert len(listed) == 2

    run_with(backend, check)
    assert s3_target.leftovers() == []
