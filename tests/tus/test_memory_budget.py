"""The memory budget is taken as bytes arrive (issue 15, class 7).

Idle PATCHes (headers announcing 8 MiB, no body) hold no memory, so they
cannot stall other uploads (before, on S3, four of them took a 32 MiB budget
and every other upload waited for good). When the budget really is in use,
a new request waits ``uploads.memory_budget_wait`` and gets 503 +
``Retry-After`` (tus and Qiniu alike) while the uploads under way finish; an
upload under way waits longer, ``uploads.memory_budget_wait_under_way``, and
then gets its 503 + ``Retry-After`` too, logged and counted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import requests

from tests.observability.scrape import scrape, value
from tests.qiniu.harness import qiniu_config, token
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


#: local streams every byte through; Swift holds only a small upload on its
#: key sent whole (one plain PUT), not Qiniu blocks; FastDFS a batch a write
_ONLY_S3 = "only S3 buffers every upload's parts in memory"


@pytest.fixture(scope="module")
def tight_gateway(target: Target) -> Iterator[GatewayProcess]:
    config = qiniu_config(target)
    config["uploads"] = {"sweep_interval": 1, "memory_budget": BUDGET, "memory_budget_wait": "1s"}
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
        pytest.skip(_ONLY_S3)
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
        # a Qiniu block is refused the same way, with Retry-After
        block = requests.post(
            f"{tight_gateway.url}/mkblk/{MiB}",
            data=newcomer,
            headers={"Authorization": f"UpToken {token()}"},
            timeout=30,
        )
        assert block.status_code == 503, (block.status_code, block.text)
        assert int(block.headers["Retry-After"]) > 0
        form = requests.post(
            tight_gateway.url,
            data={"token": token(), "key": "budget-form"},
            files={"file": ("f.bin", newcomer)},
            timeout=30,
        )
        assert form.status_code == 503, (form.status_code, form.text)
        assert int(form.headers["Retry-After"]) > 0
        refusals = scrape(tight_gateway.url)
        counted = "upload_gateway_memory_budget_refusals_total"
        assert value(refusals, counted, request="new") >= 3

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


@pytest.fixture(scope="module")
def one_part_gateway(target: Target) -> Iterator[GatewayProcess]:
    """A budget of one part; new work waits long, work under way briefly."""
    config = qiniu_config(target)
    config["uploads"] = {
        "sweep_interval": 1,
        "memory_budget": PART,
        "memory_budget_wait": "30s",
        "memory_budget_wait_under_way": "2s",
    }
    with GatewayProcess(config) as gw:
        yield gw


def test_an_upload_under_way_waits_for_memory_with_a_bound(
    one_part_gateway: GatewayProcess, target: Target
) -> None:
    if not target.name.startswith("s3"):
        pytest.skip(_ONLY_S3)
    gw = one_part_gateway
    data = os.urandom(2 * PART)
    url = create(gw.files_url, len(data))
    writer = open_patch(url, 0, len(data), data[:1024])  # holds the whole budget
    stalled_url = create(gw.files_url, PART)
    stalled = None
    try:
        time.sleep(0.5)
        # a new request queues for memory behind it, and will hold it, stalled
        stalled = open_patch(stalled_url, 0, PART, b"s" * 1024)
        time.sleep(0.5)
        writer.sendall(data[1024:PART])  # part 1 goes to the store, its memory to the queue
        time.sleep(2.0)
        started = time.monotonic()
        writer.sendall(data[PART : PART + MiB])  # part 2 needs memory the stalled one holds
        writer.settimeout(30)
        status, headers = answer_head(writer)
        waited = time.monotonic() - started
        assert status == 503, status
        assert int(headers["retry-after"]) > 0
        assert 1.5 < waited < 10, waited
    finally:
        writer.close()
        if stalled is not None:
            stalled.close()
    samples = scrape(gw.url)
    assert value(samples, "upload_gateway_memory_budget_refusals_total", request="under_way") == 1
    assert "a request under way waited 2.0s" in gw.log()
    # the part the store took before the refusal is kept: the upload resumes there
    at = offset_of(url)
    assert at == PART, at
    done = patch(url, at, data[at:])
    assert done.status_code == 204, (done.status_code, done.text)
    assert sha256(download(url)) == sha256(data)
