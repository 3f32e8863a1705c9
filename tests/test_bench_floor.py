"""The floor relays (``bench/floor.py``) pass parts and are measured; the
ceiling they set is computed from the run's figures. No timing is asserted."""

from __future__ import annotations

import os
from typing import Any

import pytest

from bench import floor, report
from bench.scenarios import Scenario

MiB = 1 << 20


@pytest.mark.parametrize(("kind", "hashes"), [("socket", "sha1,sha256"), ("http", "crc32")])
def test_a_relay_passes_parts_and_is_measured(kind: str, hashes: str) -> None:
    cpu = floor.measure(kind, hashes, gib=64 / 1024)
    assert 0 < cpu < 60  # seconds per GiB; a relay that passed nothing fails in the sender


def test_models_of_the_scenarios() -> None:
    assert floor.model_of(Scenario("tus", 512 * MiB)) == floor.Model("sha256")
    assert floor.model_of(Scenario("qiniu-v2", 64 * MiB, part=8 * MiB)) == floor.Model(
        "sha1,sha256"
    )
    four = floor.model_of(Scenario("qiniu-v2", 64 * MiB))
    assert four == floor.Model("sha1,sha256", resent=0.5, md5=0.5)
    assert floor.model_of(Scenario("qiniu-form", MiB, count=200)) is None
    floors = {"socket": 0.5, "socket+sha1,sha256": 1.8, "socket+md5": 2.1}
    assert four is not None and four.floor(floors) == pytest.approx(1.8 + 0.25 + 0.8)
    assert floor.Model("sha256").floor(floors) is None  # not measured


def _run(what: str, wall: float, client: float, store: float, gw: float = 0.0) -> dict[str, Any]:
    gib = 0.25
    cpus = os.cpu_count() or 1
    return {
        "env": "s3-x",
        "scenario": "qiniu-v2 1x64M p8M",
        "what": what,
        "label": "boto3 8M×10" if what == "baseline" else None,
        "bytes_ok": gib * 2**30,
        "client_cpu_s": client * gib,
        "cpu_per_gib": gw or None,
        "aux_cpu_per_gib": store,
        "wall_s": wall * gib / cpus,
    }


def test_the_ceiling_is_the_baselines_cpus_x_wall_over_client_store_and_floor() -> None:
    records = [
        _run("baseline", wall=14.0, client=6.5, store=7.5),
        _run("gateway", wall=19.0, client=7.0, store=8.5, gw=4.3),
    ]
    rows = [
        {"env": "s3-x", "scenario": "qiniu-v2 1x64M p8M", "baseline": "boto3 8M×10", "ratio": 0.7}
    ]
    models = {"qiniu-v2 1x64M p8M": floor.Model("sha1,sha256")}
    table = report.ceiling_table(records, rows, {"socket+sha1,sha256": 1.5}, models)
    # 14.0 / (7.0 on the gateway's path + 7.5 on the baseline's + 1.5) = 0.875
    assert "| 0.88 | 0.70 | 4.30 |" in table.splitlines()[-1]
