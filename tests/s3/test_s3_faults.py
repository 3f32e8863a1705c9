"""Faults: the S3 server stops mid-upload and comes back (Swift keeps its
data; moto would lose it), a part upload fails inside one long write."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tusclient import client as tus

from backends.base import Backend, BackendContext, StreamInfo
from backends.errors import BackendUnavailable
from backends.registry import backend_class
from backends.s3.backend import S3Backend
from gateway.core.budget import Budget
from tests.s3.conftest import S3Gateway
from tests.support.memkv import MemoryKV
from tests.support.targets import S3Target, SwiftS3Target, selected_targets
from tests.tus.helpers import create, download, offset_of, patch

MiB = 1024 * 1024


class _OwnSwift(SwiftS3Target):
    """A Swift of this module's own, so stopping it disturbs no other test."""


@pytest.fixture(scope="module")
def own_swift() -> Iterator[S3Target]:
    if "s3-swift" not in selected_targets():
        pytest.skip("s3-swift is not among GATEWAY_TEST_BACKENDS")
    target = _OwnSwift()
    try:
        yield target
    finally:
        target.stop()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_swift_stopped_mid_upload_then_restarted(own_swift: S3Target, tmp_path: Path) -> None:
    data = os.urandom(40 * MiB + 123)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    with S3Gateway(own_swift, {"max_attempts": 1}) as gw:
        uploader = tus.TusClient(gw.process.files_url).uploader(
            str(source), chunk_size=4 * MiB, retries=120, retry_delay=0.25
        )
        url = uploader.create_url()
        uploader.set_url(url)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                uploader.upload()
            except BaseException as exc:
                errors.append(exc)

        other = create(gw.process.files_url, MiB)  # a second upload, idle
        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.time() + 60
        while offset_of(url) < 10 * MiB and time.time() < deadline:
            time.sleep(0.05)
        own_swift.server.stop()  # while PATCHes keep coming
        try:
            held = offset_of(url)  # the state store still answers
            assert 10 * MiB <= held < len(data)
            r = patch(other, 0, data[:MiB])
            assert r.status_code == 503, r.text
            assert int(r.headers["Retry-After"]) > 0
            # the client is told to retry, with the request id to quote; the
            # store's address stays in the log
            reqid = r.headers["X-Request-Id"]
            assert r.text.strip() == f"temporarily unavailable; retry later (request {reqid})"
            assert offset_of(other) == 0
            time.sleep(1.0)
        finally:
            own_swift.server.start()
        assert patch(other, 0, data[:MiB]).status_code == 204
        thread.join(timeout=180)
        assert not thread.is_alive() and not errors, errors
        assert _sha(download(url)) == _sha(data)
        key = url.rsplit("/", 1)[1]
        stored = gw.s3.get_object(Bucket=gw.bucket, Key=key)["Body"].read()
        assert _sha(stored) == _sha(data)
        assert gw.leftovers() == []


async def _open(target: S3Target) -> Backend:
    raw = target.backend_config()
    cls = backend_class(raw["type"])
    context = BackendContext(kv=MemoryKV(), budget=Budget(256 * MiB))
    backend = cls("faults", cls.config_model.model_validate(raw), context)
    await backend.start()
    if isinstance(backend, S3Backend):
        await backend.settled()  # the probe's clean-up: no task but the test's runs
    return backend


async def _chunks(data: bytes, size: int = 256 * 1024) -> Any:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("announced", [False, True], ids=["buffered", "forwarded"])
def test_failed_part_keeps_the_parts_before_it(
    s3_target: S3Target, monkeypatch: pytest.MonkeyPatch, announced: bool
) -> None:
    data = os.urandom(30 * MiB)

    async def main() -> None:
        backend = await _open(s3_target)
        assert isinstance(backend, S3Backend)
        try:
            key = f"faults/{os.urandom(4).hex()}"
            stream = StreamInfo(os.urandom(16).hex(), key, len(data), 0)
            stream.state = await backend.create_stream(stream)
            stream.incoming = len(data) if announced else None
            real = {n: getattr(backend.store, n) for n in ("upload_part", "upload_part_streaming")}

            def failing_part_3(name: str) -> Any:
                async def flaky(key: str, upload_id: str, number: int, *rest: Any) -> str:
                    if number == 3:
                        raise BackendUnavailable("injected: the store went away")
                    return str(await real[name](key, upload_id, number, *rest))

                return flaky

            for name in real:
                monkeypatch.setattr(backend.store, name, failing_part_3(name))
            with pytest.raises(BackendUnavailable) as caught:
                await backend.write(stream, _chunks(data))
            await asyncio.sleep(0.1)  # the budget's wake-ups
            assert asyncio.all_tasks() == {asyncio.current_task()}  # nothing left running
            assert isinstance(backend.context.budget, Budget)
            assert backend.context.budget.used == 0
            partial = caught.value.partial
            assert partial is not None and partial.offset == 16 * MiB
            stream.offset, stream.state = partial.offset, partial.state
            for name, method in real.items():
                monkeypatch.setattr(backend.store, name, method)
            result = await backend.write(stream, _chunks(data[stream.offset :]))
            stream.offset, stream.state = result.offset, result.state
            if result.after_commit:
                await result.after_commit()
            stream.state = await backend.finish_stream(stream)
            await backend.commit(stream, key)
            got = b"".join([c async for c in backend.read(key)])
            assert _sha(got) == _sha(data)
            await backend.delete_object(key)
        finally:
            await backend.close()

    asyncio.run(main())
    assert s3_target.leftovers() == []
