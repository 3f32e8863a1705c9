"""The memory budget is taken as bytes arrive (issue 15, class 7).

Idle PATCHes (headers announcing 8 MiB, no body) hold no memory, so they
cannot stall other uploads (before, on S3, four of them took a 32 MiB budget
and every other upload waited for good). When the budget really is in use,
a new request waits ``uploads.memory_budget_wait`` and gets 503 +
``Retry-After`` while the uploads under way finish.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import gateway_config
from tests.observability.scrape import scrape, value
from tests.support.targets import Target
from tests.tus.helpers import (
    TUS,
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
PART = 8 * MiB  # the S3 part size: one such upload is one buffered PutObject
BUDGET = 4 * PART


@pytest.fixture(scope="module")
def tight_gateway(target: Target) -> Iterator[GatewayProcess]:
    config = gateway_config(
        target,
        uploads={"sweep_interval": 1, "memory_budget": BUDGET, "memory_budget_wait": "1s"},
    )
    with GatewayProcess(config) as gw:
        yield gw


def test_idle_patches_hold_no_memory(tight_gateway: GatewayProcess) -> None:
    idle = [
        open_patch(create(tight_gateway.files_url, PART), 0, PART)
        for _ in range(3 * BUDGET // PART)
    ]
    try:
        time.sleep(0.5)
        data = os.urandom(PART)
        url = create(tight_gateway.files_url, len(data))
        started = time.monotonic()
        done = patch(url, 0, data)
        assert done.status_code == 204, (done.status_code, done.text)
        assert time.monotonic() - started < 20
        assert sha256(download(url)) == sha256(data)
    finally:
        for sock in idle:
            sock.close()


def test_full_budget_refuses_new_work_and_finishes_work_under_way(
    tight_gateway: GatewayProcess, target: Target
) -> None:
    if not target.name.startswith("s3"):
        pytest.skip("only S3 buffers whole parts in memory (local, Swift stream through)")
    first = 1024
    uploads = [(create(tight_gateway.files_url, PART), os.urandom(PART)) for _ in range(4)]
    # each sends its first KiB: each S3 write now holds a part's worth, 4 x 8 MiB
    holders = [open_patch(url, 0, PART, data[:first]) for url, data in uploads]
    try:
        time.sleep(1.0)
        newcomer = os.urandom(MiB)
        new_url = create(tight_gateway.files_url, len(newcomer))
        started = time.monotonic()
        refused = patch(new_url, 0, newcomer)
        waited = time.monotonic() - started
        assert refused.status_code == 503, (refused.status_code, refused.text)
        assert int(refused.headers["Retry-After"]) > 0
        assert 0.8 < waited < 10
        assert offset_of(new_url) == 0
        refusals = scrape(tight_gateway.url)
        assert value(refusals, "upload_gateway_memory_budget_refusals_total") >= 1

        # an upload under way is not refused: it finishes with what it holds
        holders[0].sendall(uploads[0][1][first:])
        holders[0].settimeout(60)
        assert answer_head(holders[0])[0] == 204
        assert sha256(download(uploads[0][0])) == sha256(uploads[0][1])

        # its memory is back: the newcomer's retry goes through
        again = patch(new_url, 0, newcomer)
        assert again.status_code == 204, (again.status_code, again.text)
        assert sha256(download(new_url)) == sha256(newcomer)
    finally:
        for sock in holders:
            sock.close()
    assert "memory budget exhausted" in tight_gateway.log()
    # the holders that disconnected kept their first KiB
    for url, _ in uploads[1:]:
        deadline = time.monotonic() + 10
        while offset_of(url) != first and time.monotonic() < deadline:
            time.sleep(0.1)
        assert offset_of(url) == first
    assert requests.get(f"{tight_gateway.url}/healthz", headers=TUS, timeout=10).ok
