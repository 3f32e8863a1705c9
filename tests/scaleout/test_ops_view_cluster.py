"""The ops view on a Redis cluster: any instance lists the unfinished uploads
of every instance, each with the instance that last saved it, and the recent
finishes of all of them."""

from __future__ import annotations

import os
import socket
from typing import Any

import requests

from tests.client.harness import wait_until
from tests.scaleout.cluster import Cluster
from tests.tus.helpers import create, patch

TOKEN = "ops-token-for-the-cluster-test"


def snapshot(url: str) -> dict[str, Any]:
    r = requests.get(
        f"{url}/ui/ops/snapshot", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def test_every_instance_sees_every_upload(redis_url: str) -> None:
    cluster = Cluster(redis_url, instances=2)
    for gw in cluster.gateways:
        gw.config["ui"] = {"ops_token": TOKEN}
    cluster.start()
    try:
        a, b = cluster.gateways
        half_a = create(f"{a.url}/files/", 2_000_000)
        assert patch(half_a, 0, os.urandom(700_000)).status_code == 204
        half_b = create(f"{b.url}/files/", 3_000_000)
        assert patch(half_b, 0, os.urandom(1_200_000)).status_code == 204
        done_b = create(f"{b.url}/files/", 1000)
        assert patch(done_b, 0, os.urandom(1000)).status_code == 204

        host = socket.gethostname()
        for gw in (a, b):
            seen = snapshot(gw.url)
            assert seen["instance"] == f"{host}:{gw.port}"
            rows = {u["id"]: u for u in seen["uploads"]}
            row_a, row_b = rows[half_a.rsplit("/", 1)[1]], rows[half_b.rsplit("/", 1)[1]]
            assert (row_a["bytes"], row_a["size"], row_a["instance"]) == (
                700_000,
                2_000_000,
                f"{host}:{a.port}",
            )
            assert (row_b["bytes"], row_b["size"], row_b["instance"]) == (
                1_200_000,
                3_000_000,
                f"{host}:{b.port}",
            )
            assert all(r["protocol"] == "tus" for r in (row_a, row_b))
            finished = {f["id"]: f for f in seen["finished"]}
            entry = finished[done_b.rsplit("/", 1)[1]]  # finished on b, listed on a too
            assert entry["instance"] == f"{host}:{b.port}" and entry["size"] == 1000
            assert entry["url"] and requests.get(entry["url"], timeout=10).status_code == 200
            assert seen["ready"]["status"] == "ok"
            assert all(c["status"] == "ok" for c in seen["ready"]["checks"].values())
            # this instance's store calls, from its Prometheus metrics
            stats = seen["backends"]
            assert stats["available"] and stats["backends"]["default"]["requests"] > 0
            assert stats["backends"]["default"]["errors"] == 0
        # throughput: both instances' bytes, summed in 5-second steps
        sent = 700_000 + 1_200_000 + 1000

        def charted() -> float:
            seen = snapshot(a.url)
            if len(seen["throughput_instances"]) < 2:
                return 0.0
            return float(sum(rate * 5 for _, rate in seen["throughput"]))

        wait_until(lambda: charted() >= 0.8 * sent, timeout=20, what="both instances charted")
        seen = snapshot(a.url)
        assert sorted(seen["throughput_instances"]) == sorted(f"{host}:{gw.port}" for gw in (a, b))
        assert charted() <= 1.2 * sent
    finally:
        cluster.stop()
