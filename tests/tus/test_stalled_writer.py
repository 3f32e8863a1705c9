"""A stalled PATCH gives its upload's lock away (issue 15, class 4).

A client sends 10 of 1,000 announced bytes and goes silent with its
connection open. A resuming request must not wait out
``locks.acquire_timeout`` and get 423: it asks the holder to stop, the holder
cancels its read, saves the 10 bytes it stored and answers; the upload then
finishes from offset 10 and the object is byte-identical.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.conftest import gateway_config
from tests.support.targets import Target
from tests.tus.helpers import (
    answer_head,
    create,
    download,
    offset_of,
    open_patch,
    patch,
    sha256,
)
from testservers.gateway import GatewayProcess

MiB = 1024 * 1024
#: long enough that a resume which had to wait for it is plainly visible
ACQUIRE_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def patient_gateway(target: Target) -> Iterator[GatewayProcess]:
    config = gateway_config(target, locks={"acquire_timeout": ACQUIRE_TIMEOUT})
    with GatewayProcess(config) as gw:
        yield gw


def _offset_once_stored(url: str, expected: int, within: float = 10.0) -> int:
    """HEAD until the stalled writer's bytes are stored (they are written as
    they arrive, but saved only when the request ends: the offset stays 0)."""
    deadline = time.monotonic() + within
    while True:
        current = offset_of(url)
        if current == expected or time.monotonic() > deadline:
            return current
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("size", "sent"),
    [(1000, 10), (12 * MiB, MiB)],  # S3: one PutObject; a streamed multipart part
    ids=["10-of-1000", "1MiB-of-12MiB"],
)
def test_stalled_patch_loses_its_lock_and_keeps_its_bytes(
    patient_gateway: GatewayProcess, size: int, sent: int
) -> None:
    data = os.urandom(size)
    url = create(patient_gateway.files_url, len(data))
    stalled = open_patch(url, 0, len(data), data[:sent])
    try:
        time.sleep(1.5)  # the bytes reach the gateway and its store
        assert offset_of(url) == 0  # nothing saved while the request is open

        started = time.monotonic()
        resume = patch(url, 0, data)  # a client that believes nothing was stored
        waited = time.monotonic() - started
        # the holder let go at once: no 423 after ACQUIRE_TIMEOUT
        assert resume.status_code == 409, (resume.status_code, resume.text)
        assert waited < 5.0, f"the resume waited {waited:.1f}s for the stalled writer"

        # the stalled writer answered too, with what it stored
        stalled.settimeout(10)
        status, headers = answer_head(stalled)
        assert status == 204
        assert headers["upload-offset"] == str(sent)
    finally:
        stalled.close()

    assert _offset_once_stored(url, sent) == sent
    done = patch(url, sent, data[sent:])
    assert done.status_code == 204, (done.status_code, done.text)
    assert done.headers["Upload-Offset"] == str(len(data))
    assert sha256(download(url)) == sha256(data)
