"""S3 stores as deployed (issue 14): the start-up probe picks what the store
really checks, the default configuration stores every part once, and a part
corrupted between the gateway and the store is refused, never committed.

By default this file is the smoke subset of the field stores (Swift 2.30's
s3api, Ceph RGW 16: ``tests/support/targets.FIELD_TARGETS``); with
``GATEWAY_TEST_BACKENDS`` it runs on the S3 targets named there.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tusclient import client as tus

from backends.base import StreamInfo
from backends.errors import BackendConfigError, BackendError
from backends.s3 import S3Backend
from tests.observability.scrape import scrape, value
from tests.s3.conftest import S3Gateway
from tests.s3.test_s3_backend import backend_for, read_all, run_with, write_all
from tests.support.cutproxy import CutProxy
from tests.support.targets import S3Target
from tests.tus.helpers import create, download, patch

KiB = 1024
MiB = 1024 * KiB


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_probe_picks_what_the_store_checks(
    store: S3Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="backends.s3")
    backend = backend_for(store)

    async def nothing() -> None:
        pass

    run_with(backend, nothing)
    found = backend.integrity.findings
    assert found is not None
    assert backend.integrity.mode == store.integrity, found
    assert found.crc32_usable is store.crc32_usable, found
    assert backend.cfg.max_parts == backend.limits.max_parts == store.max_parts
    assert found.upload_part_copy == "accepted" and backend.store.part_copy
    # Ceph RGW 16 makes an object only from every part of its upload
    assert backend.limits.partial_complete is store.partial_complete, found
    # moto and Swift 2.38 refuse a conditional Complete on a taken key;
    # Swift 2.30 refuses the form, Ceph RGW 16 replaces the object
    assert backend.limits.complete_if_absent is store.complete_if_absent, found
    assert backend.limits.checks_part_md5 is store.part_etag_md5, found
    said = [r.getMessage() for r in caplog.records]
    if store.integrity == "nothing":
        assert any("checks no bytes" in line for line in said), said
    else:
        assert any(f"integrity via {store.integrity}" in line for line in said), said
    assert store.leftovers() == []  # the probe cleaned up after itself


def test_settings_the_store_cannot_honour_stop_start_up(store: S3Target) -> None:
    if store.integrity == "Content-MD5":  # CRC32 taken without checks, or refused
        backend = backend_for(store, multipart_checksum="CRC32")
        with pytest.raises(BackendConfigError, match="multipart_checksum is CRC32, but the store"):
            run_with(backend, _nothing)
    if store.max_parts < 10_000:  # Swift's s3api: part 10,000 is refused
        backend = backend_for(store, max_parts=10_000)
        with pytest.raises(BackendConfigError, match="max_parts is 10000, but the store refuses"):
            run_with(backend, _nothing)
    assert store.leftovers() == []


async def _nothing() -> None:
    pass


def test_presigned_urls_and_small_parts_are_probed(store: S3Target) -> None:
    """``url: presigned`` starts only once a presigned GET worked; a
    ``min_part_size`` below the store's minimum (5 MiB on every store here)
    stops start-up instead of failing assemblies later."""
    backend = backend_for(store, url={"mode": "presigned"})
    run_with(backend, _nothing)
    assert backend.integrity.findings is not None
    assert backend.integrity.findings.presigned == "accepted"
    small = backend_for(store, min_part_size="1MiB", part_size="5MiB")
    with pytest.raises(BackendConfigError, match="refuses parts of min_part_size"):
        run_with(small, _nothing)
    assert store.leftovers() == []


@pytest.fixture()
def proxy(store: S3Target) -> Iterator[CutProxy]:
    """A proxy between the backend and the store that can flip bits."""
    port = int(store.endpoint.rsplit(":", 1)[1])
    with CutProxy(port) as p:
        yield p


def _through(store: S3Target, proxy: CutProxy) -> S3Backend:
    return backend_for(store, endpoint_url=proxy.url, part_size="5MiB")


@pytest.mark.parametrize("how", ["once", "always"])
def test_a_part_corrupted_on_the_way_is_refused(store: S3Target, proxy: CutProxy, how: str) -> None:
    """One byte flipped in a forwarded part: the store refuses it (CRC32
    trailer) or its ETag shows it (Content-MD5 mode), and the part is sent
    again from the buffer with its checksum (one fallback). Every part
    corrupted: the write fails and nothing is committed."""
    if store.integrity == "nothing":
        pytest.skip(f"{store.name} checks no bytes (a mock store)")
    backend = _through(store, proxy)
    data = os.urandom(12 * MiB)
    key = f"field/{os.urandom(4).hex()}"

    async def check() -> None:
        stream = StreamInfo(os.urandom(16).hex(), key, len(data), 0, incoming=len(data))
        stream.state = await backend.create_stream(stream)
        if how == "once":
            proxy.flip_next_at(MiB)
            await write_all(backend, stream, data, 64 * KiB)
            stream.state = await backend.finish_stream(stream)
            await backend.commit(stream, key)
            assert await read_all(backend, key) == data
            await backend.delete_object(key)
            return
        proxy.flip_every(MiB)
        with pytest.raises(BackendError):
            await write_all(backend, stream, data, 64 * KiB)
        proxy.flip_every(None)
        assert await backend.stat(key) is None
        await backend.discard_stream(stream)

    run_with(backend, check)
    assert proxy.flips >= 1
    if how == "once":
        expected = "trailer_refused" if store.integrity == "CRC32" else "etag_mismatch"
        assert backend.integrity.fallbacks == {expected: 1}
    assert store.leftovers() == []


def test_tus_uploads_with_the_default_config(store: S3Target, tmp_path: Path) -> None:
    """A gateway with the default configuration: small PATCHes packed into
    parts and large ones forwarded, both stored once; the probe's choice is
    in the gateway's log, and no fallback is."""
    data = os.urandom(11 * MiB + 5)
    source = tmp_path / "field.bin"
    source.write_bytes(data)
    with S3Gateway(store) as gw:
        uploader = tus.TusClient(gw.process.files_url).uploader(
            str(source), chunk_size=256 * KiB, metadata={"filename": source.name}
        )
        uploader.upload()
        assert uploader.url is not None and _sha(download(uploader.url)) == _sha(data)
        url = create(gw.process.files_url, len(data))
        assert patch(url, 0, data).status_code == 204
        assert _sha(download(url)) == _sha(data)
        samples = scrape(gw.process.url)
        log = gw.process.log_path.read_text(errors="replace")
        assert gw.leftovers() == []
    # the gateway's own count: no part was sent twice, no Complete repeated
    assert value(samples, "upload_gateway_backend_fallbacks_total") == 0
    parts = value(
        samples, "upload_gateway_backend_request_duration_seconds_count", operation="upload_part"
    )
    assert parts >= 2  # the metrics do see the parts
    said = [line for line in log.splitlines() if "gateway.access" not in line]
    if store.integrity != "nothing":
        assert any(f"integrity via {store.integrity}" in line for line in said), said
    assert not [line for line in said if "fell back" in line or "Traceback" in line], said


def test_reprobe_is_bounded(store: S3Target) -> None:
    """Answers against the probe run it again, at most once a minute: a
    doubt within the minute waits for its end (one probe for many doubts)."""
    backend = backend_for(store)

    async def check() -> None:
        integrity = backend.integrity
        before = integrity.probes
        integrity.doubt()  # just probed at start: not again yet
        await asyncio.sleep(0.1)
        waiting = integrity._task
        assert waiting is not None and not waiting.done()
        assert integrity.probes == before
        integrity.doubt()
        assert integrity._task is waiting  # one probe waits, not two
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        integrity._probed_at -= 61  # the minute has passed: at once
        integrity.doubt()
        integrity.doubt()
        task = integrity._task
        assert task is not None and task is not waiting
        await task
        assert integrity.probes == before + 1
        assert integrity.mode == store.integrity

    run_with(backend, check)
    assert store.leftovers() == []
