"""Uploads leave no bytes in reference cycles: with the cyclic collector off
in the gateway, the memory a run of uploads takes is back once they end, and
a collection would find nothing of the gateway's unreachable.

The gateway collects its young generation rarely (``cli.GC_YOUNG_THRESHOLD``)
and freezes what start-up made, so bytes caught in a cycle wait long for a
full collection: a cancelled task's traceback holding a part's collected
bytes once kept about 40 MB per 64 MiB SDK upload (8 MiB parts) — 955 MB of
RSS after 17 uploads. The official SDK drives the three Qiniu upload kinds (tus:
``tests/tus/test_tus_garbage.py``)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import qiniu

from tests.qiniu.harness import MiB, qiniu_config, region, token
from tests.support.no_collector import assert_uploads_leave_nothing, collector_off
from tests.support.targets import Target
from testservers.gateway import GatewayProcess


@pytest.fixture
def no_collector_gw(target: Target, tmp_path: Path) -> Iterator[GatewayProcess]:
    with collector_off(qiniu_config(target), tmp_path) as gw:
        yield gw


def _upload(gw: GatewayProcess, kind: str, path: Path, n: int) -> None:
    key = f"garbage/{kind}-{n}"
    if kind == "form":
        ret, info = qiniu.put_file_v2(token(), key, str(path), regions=[region(gw)])
    else:
        ret, info = qiniu.put_file_v2(
            token(), key, str(path), regions=[region(gw)],
            version=kind, part_size=8 * MiB if kind == "v2" else None,
        )  # fmt: skip
    assert info.status_code == 200, info
    assert ret["key"] == key


@pytest.mark.parametrize(("kind", "size"), [("v2", 32 * MiB), ("v1", 16 * MiB), ("form", 3 * MiB)])
def test_uploads_leave_no_cycles_holding_bytes(
    no_collector_gw: GatewayProcess, tmp_path: Path, kind: str, size: int
) -> None:
    gw = no_collector_gw
    path = tmp_path / "src.bin"
    path.write_bytes(os.urandom(size))
    numbers = itertools.count()
    assert_uploads_leave_nothing(
        gw,
        lambda: _upload(gw, kind, path, next(numbers)),
        max(6, (256 * MiB) // size),
        f"{kind} uploads of {size >> 20} MiB",
    )
