"""An object from bytes already at hand (``Uploads.put``: a Qiniu form file
held in memory) on a real local store and both state stores: what it costs."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gateway.core.records import Status
from gateway.core.service import UploadService
from tests.core.services import run
from tests.core.test_multipart import Calls


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_a_put_takes_one_lock_and_reads_nothing_back(tmp_path: Path, state: dict[str, Any]) -> None:
    """The record it creates is the one it writes: not read back from the
    state store (a read per form upload saved); created once, saved as its
    bytes are stored and once more as it becomes the object."""

    async def body(service: UploadService) -> None:
        calls = Calls()
        calls.watch(service.state, "get", "create", "save")
        calls.watch(service.locks, "hold")
        data = os.urandom(100_000)
        record = await service.put(
            protocol="test", bucket="default", key="held.bin", length=len(data), body=_once(data)
        )
        counts = calls.take()
        assert record.status is Status.FINISHED and record.offset == len(data)
        assert counts.get("get", 0) == 0, counts
        assert counts["create"] == 1 and counts["hold"] == 1, counts
        read = b"".join([c async for c in service.read("default", "held.bin")])
        assert read == data

    run(tmp_path, state, body)
