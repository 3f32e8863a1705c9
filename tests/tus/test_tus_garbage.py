"""tus uploads leave no bytes in reference cycles: with the cyclic collector
off in the gateway, the memory a run of tuspy uploads takes is back once they
end (the Qiniu kinds: ``tests/qiniu/test_qiniu_garbage.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tusclient import client as tus

from tests.conftest import gateway_config
from tests.support.no_collector import GROWTH_MAX, collector_off, rss
from tests.support.targets import Target
from tests.tus.helpers import create, offset_of, open_patch

MiB = 1024 * 1024
#: what 300 cut PATCHes may leave behind (the state of 300 more uploads)
CUT_GROWTH_MAX = 20 * MiB


@pytest.mark.parametrize("chunk", [4 * MiB, 64 * MiB], ids=["4MiB-patches", "one-patch"])
def test_tus_uploads_leave_no_cycles_holding_bytes(
    target: Target, tmp_path: Path, chunk: int
) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(16 * MiB + 4321))
    with collector_off(gateway_config(target), tmp_path) as gw:

        def upload() -> None:
            uploader = tus.TusClient(gw.files_url).uploader(str(source), chunk_size=chunk)
            uploader.upload()
            assert uploader.offset == source.stat().st_size

        for _ in range(2):  # the first uploads warm caches and pools up
            upload()
        before = rss(gw.pid)
        for _ in range(16):
            upload()
        grown = rss(gw.pid) - before
    assert grown < GROWTH_MAX, (
        f"16 tus uploads of 16 MiB in {chunk >> 20} MiB PATCHes left the gateway "
        f"{grown >> 20} MiB larger with the cyclic collector off"
    )


def test_cut_patches_leave_no_cycles_holding_bytes(target: Target, tmp_path: Path) -> None:
    """PATCHes whose client vanished mid-body: aiohttp keeps the read's error,
    whose traceback held the body reader's frame and the chunk it had in hand
    (``bodies.untraced``); the request's parser held its reader in a cycle
    (``http_trailers``), and the tus context its request (``routes``) — about
    100 KiB a cut PATCH in all before."""
    sent = os.urandom(MiB)
    cuts = 300
    with collector_off(gateway_config(target), tmp_path) as gw:

        def cut() -> None:
            url = create(gw.files_url, 4 * MiB)
            open_patch(url, 0, 4 * MiB, sent).close()
            assert offset_of(url) <= MiB  # the PATCH is over (its lock given back)

        for _ in range(20):
            cut()
        before = rss(gw.pid)
        for _ in range(cuts):
            cut()
        grown = rss(gw.pid) - before
    assert grown < CUT_GROWTH_MAX, (
        f"{cuts} PATCHes cut after 1 MiB left the gateway {grown >> 20} MiB larger "
        "with the cyclic collector off"
    )
