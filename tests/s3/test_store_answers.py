"""A real S3 store that answers against the start-up probe (issue 14),
through ``tests/support/s3proxy.py``, which answers chosen requests itself as
a store without a feature does: every upload still ends with the right bytes,
the fallback is counted and logged once, and a re-probe makes later uploads
go the store's way at the first try.

Runs on the S3 targets selected (moto and Swift 2.38 by default; the field
stores, Swift 2.30 and Ceph RGW 16, when ``GATEWAY_TEST_BACKENDS`` names
them); the Complete and trailer cases only where the probe chose CRC32 (moto
and Swift 2.38: Swift 2.30 and Ceph RGW 16 never get part checksums).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Iterator

import pytest

from backends.base import StreamInfo
from backends.errors import NotFound
from backends.s3 import S3Backend, S3Config
from backends.s3.store import Store
from tests.s3.conftest import S3_TARGETS, store_named
from tests.s3.test_s3_backend import backend_for, finished_stream, read_all, run_with, write_all
from tests.support.s3proxy import (
    S3Proxy,
    complete_with_checksums,
    trailed_part,
    upload_part_copy,
)
from tests.support.targets import S3Target

MiB = 1024 * 1024

NOT_IMPLEMENTED = (
    501,
    "NotImplemented",
    "A header you provided implies functionality that is not implemented",
)
MALFORMED = (400, "MalformedXML", "The XML you provided was not well-formed or did not validate")
SHA_MISMATCH = (
    400,
    "XAmzContentSHA256Mismatch",
    "The provided 'x-amz-content-sha256' header does not match",
)


@pytest.fixture(scope="module", params=S3_TARGETS or ["none"])
def store(request: pytest.FixtureRequest) -> S3Target:
    return store_named(str(request.param))


@pytest.fixture()
def proxy(store: S3Target) -> Iterator[S3Proxy]:
    with S3Proxy(store.endpoint) as p:
        yield p


def _backend(store: S3Target, proxy: S3Proxy) -> S3Backend:
    # a name of its own: the once-a-minute warnings of other tests hide none here
    name = f"answers-{uuid.uuid4().hex[:8]}"
    return backend_for(store, name=name, endpoint_url=proxy.url, part_size="5MiB")


def _said(caplog: pytest.LogCaptureFixture, *words: str) -> list[str]:
    lines = [r.getMessage() for r in caplog.records]
    return [line for line in lines if all(w in line for w in words)]


def _as_if_started_a_minute_ago(backend: S3Backend) -> None:
    """A doubt re-probes at once (not a minute after start-up)."""
    backend.integrity._probed_at -= 61


async def _reprobed(backend: S3Backend) -> None:
    task = backend.integrity._task
    assert task is not None, "the answer did not make the backend doubt the probe"
    await task


async def _assemble_and_check(backend: S3Backend, key: str) -> None:
    """Two streams (6 MiB, 1 MiB: UploadPartCopy could copy both) into ``key``."""
    first, second = os.urandom(6 * MiB), os.urandom(MiB + 3)
    streams = [await finished_stream(backend, first), await finished_stream(backend, second)]
    await backend.assemble(streams, key)
    assert await read_all(backend, key) == first + second
    await backend.delete_object(key)
    for stream in streams:
        await backend.discard_stream(stream)


def test_a_store_without_upload_part_copy(
    store: S3Target,
    proxy: S3Proxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """UploadPartCopy NotImplemented from the start: the probe finds it, says
    so once, and assemblies copy through the gateway without trying it."""
    caplog.set_level(logging.INFO)
    proxy.refuse("copy", upload_part_copy, *NOT_IMPLEMENTED)
    backend = _backend(store, proxy)

    async def check() -> None:
        assert not backend.store.part_copy
        await _assemble_and_check(backend, f"answers/{uuid.uuid4().hex}")

    run_with(backend, check)
    assert proxy.refused == {"copy": 1}  # the probe's own: none at run time
    assert backend.integrity.fallbacks == {}
    said = _said(caplog, "no UploadPartCopy")
    assert len(said) == 1 and "NotImplemented" in said[0], said
    assert store.leftovers() == []


@pytest.mark.parametrize("first", ["assembly", "last part"])
def test_upload_part_copy_refused_after_start(
    store: S3Target,
    proxy: S3Proxy,
    caplog: pytest.LogCaptureFixture,
    first: str,
) -> None:
    """A store that stops taking UploadPartCopy: what it would have copied
    (an assembly's parts, a stream's last part from its tail piece) goes
    through the gateway instead (counted, one WARNING), the store is probed
    again, and the next streams and assemblies do so at the first try."""
    caplog.set_level(logging.INFO)
    backend = _backend(store, proxy)

    async def check() -> None:
        assert backend.store.part_copy
        first_bytes, second_bytes = os.urandom(6 * MiB), os.urandom(MiB + 3)
        streams = []
        if first == "assembly":  # finished while UploadPartCopy works
            streams = [await finished_stream(backend, d) for d in (first_bytes, second_bytes)]
        _as_if_started_a_minute_ago(backend)
        proxy.refuse("copy", upload_part_copy, *NOT_IMPLEMENTED)
        if first == "last part":  # 5 MiB part + a tail piece copied as the last part
            streams = [await finished_stream(backend, d) for d in (first_bytes, second_bytes)]
        key = f"answers/{uuid.uuid4().hex}"
        await backend.assemble(streams, key)
        assert await read_all(backend, key) == first_bytes + second_bytes
        await backend.delete_object(key)
        for stream in streams:
            await backend.discard_stream(stream)
        assert backend.integrity.fallbacks == {"part_copy_refused": 1}
        await _reprobed(backend)
        assert not backend.store.part_copy
        refused = proxy.refused["copy"]  # those at run time, and the re-probe's
        await _assemble_and_check(backend, f"answers/{uuid.uuid4().hex}")
        assert proxy.refused["copy"] == refused  # not tried again

    run_with(backend, check)
    assert backend.integrity.fallbacks == {"part_copy_refused": 1}
    said = _said(caplog, "part_copy_refused")
    assert len(said) == 1 and "NotImplemented" in said[0], said
    assert store.leftovers() == []


async def _upload(backend: S3Backend, data: bytes, writes: int = 1) -> None:
    """``data`` as one stream on its final key in ``writes`` forwarded writes."""
    key = f"answers/{uuid.uuid4().hex}"
    stream = StreamInfo(uuid.uuid4().hex, key, len(data), 0)
    stream.state = await backend.create_stream(stream)
    size = len(data) // writes
    for n in range(writes):
        piece = data[n * size : len(data) if n == writes - 1 else (n + 1) * size]
        stream.incoming = len(piece)
        await write_all(backend, stream, piece, 64 * 1024)
    stream.state = await backend.finish_stream(stream)
    await backend.commit(stream, key)
    assert await read_all(backend, key) == data
    await backend.delete_object(key)


def test_complete_refused_with_checksums_is_retried_without(
    store: S3Target,
    proxy: S3Proxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """CompleteMultipartUpload listing CRC32s refused (Swift 2.30's
    MalformedXML) after the probe found it worked: completed again without
    them (counted, one WARNING), the store probed again, and new uploads go
    without CRC32, completed at the first try."""
    caplog.set_level(logging.INFO)
    backend = _backend(store, proxy)

    async def check() -> None:
        if backend.store.checksum != "CRC32":
            pytest.skip(
                f"the probe chose {backend.integrity.mode} on {store.name}: no part checksums"
            )
        _as_if_started_a_minute_ago(backend)
        proxy.refuse("complete", complete_with_checksums, *MALFORMED)
        await _upload(backend, os.urandom(11 * MiB))
        assert backend.integrity.fallbacks == {"checksums_refused": 1}
        await _reprobed(backend)
        assert backend.store.checksum is None
        refused = proxy.refused["complete"]  # at run time, and the re-probe's
        await _upload(backend, os.urandom(11 * MiB))
        assert proxy.refused["complete"] == refused

    run_with(backend, check)
    assert backend.integrity.fallbacks == {"checksums_refused": 1}
    said = _said(caplog, "checksums_refused")
    assert len(said) == 1 and "MalformedXML" in said[0], said
    assert (
        _said(caplog, "after the store answered differently") or backend.integrity.mode == "nothing"
    )
    assert store.leftovers() == []


def test_trailers_refused_after_start(
    store: S3Target,
    proxy: S3Proxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Forwarded parts' aws-chunked trailers refused (Ceph 16's answer)
    after the probe found them checked: the parts in flight are sent again
    from their buffers (counted, one WARNING), the store is probed again, and
    from then on parts are sent once — the rest of that stream's, buffered
    with a CRC32 header, and new streams' with Content-MD5."""
    caplog.set_level(logging.INFO)
    backend = _backend(store, proxy)

    async def check() -> None:
        if not (backend.store.checksum == "CRC32" and backend.store.trailers):
            pytest.skip(f"the probe chose {backend.integrity.mode} on {store.name}: no trailers")
        _as_if_started_a_minute_ago(backend)
        proxy.refuse("trailer", trailed_part, *SHA_MISMATCH)
        key = f"answers/{uuid.uuid4().hex}"
        data = os.urandom(20 * MiB)
        stream = StreamInfo(uuid.uuid4().hex, key, len(data), 0, incoming=10 * MiB)
        stream.state = await backend.create_stream(stream)
        await write_all(backend, stream, data[: 10 * MiB], 64 * 1024)
        resent = backend.integrity.fallbacks["trailer_refused"]
        assert 1 <= resent <= 2  # the write's two parts at most, each sent again once
        await _reprobed(backend)
        assert not backend.store.trailers and backend.store.checksum is None
        refused = proxy.refused["trailer"]
        assert refused == resent + 2  # the parts', and the re-probe's (right, wrong)
        stream.incoming = 10 * MiB
        await write_all(backend, stream, data[10 * MiB :], 64 * 1024)  # still CRC32, buffered
        stream.state = await backend.finish_stream(stream)
        await backend.commit(stream, key)
        assert await read_all(backend, key) == data
        await backend.delete_object(key)
        await _upload(backend, os.urandom(11 * MiB))  # a new stream: Content-MD5
        assert proxy.refused["trailer"] == refused
        assert backend.integrity.fallbacks == {"trailer_refused": resent}

    run_with(backend, check)
    said = _said(caplog, "trailer_refused")
    assert len(said) == 1 and "XAmzContentSHA256Mismatch" in said[0], said
    assert store.leftovers() == []


# -- a bucket the gateway created, not served at once -------------------------------------


def test_a_new_bucket_is_waited_for(store: S3Target) -> None:
    """Start-up waits (bounded) for a bucket it created to be served: Swift
    2.30's s3api answered NoSuchBucket to the probe's first multipart upload
    right after creating one, under load. Here the bucket appears 0.5 s late."""
    config = S3Config.model_validate(store.backend_config())

    async def check() -> None:
        s = Store(config)
        await s.open()
        try:
            with pytest.raises(NotFound, match="NoSuchBucket"):
                await s.served(0.3)  # nobody creates it: the wait ends
            loop = asyncio.get_running_loop()
            creating = loop.run_in_executor(None, _create_later, store, config.bucket)
            waited = await s.served(30)
            await creating
            assert 0.4 < waited < 30
            assert await s.served(1) == 0.0  # served at once now
        finally:
            await s.close()

    asyncio.run(check())


def _create_later(store: S3Target, bucket: str) -> None:
    time.sleep(0.5)
    store.client().create_bucket(Bucket=bucket)
