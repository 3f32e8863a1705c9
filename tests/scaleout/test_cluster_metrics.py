"""Three instances on one Redis, requests spread at random: each instance's
/metrics counts what it served, the sums over the instances are exactly the
clients' uploads, and ``upload-gateway uploads`` sees the cluster's
unfinished uploads from any instance's config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.observability.scrape import Samples, delta, scrape
from tests.scaleout.clients import TUS, tus_upload
from tests.scaleout.cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
P = "upload_gateway_"
KiB = 1024


def _scrape_all(cluster: Cluster) -> list[Samples]:
    return [scrape(gw.url) for gw in cluster.gateways]


def _scrape_settled(cluster: Cluster) -> list[Samples]:
    """Scrapes once the tus request counts stop moving (a request's metrics
    are recorded just after its answer), at most 5 s."""
    deadline = time.monotonic() + 5
    last = _scrape_all(cluster)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = _scrape_all(cluster)
        if _sum(last, now, P + "requests_total", protocol="tus") == 0:
            return now
        last = now
    return last


def _sum(before: list[Samples], after: list[Samples], name: str, **labels: str) -> float:
    return sum(delta(b, a, name, **labels) for b, a in zip(before, after, strict=True))


def test_every_instance_scraped(cluster: Cluster) -> None:
    uploads, size, chunk = 12, 300 * KiB, 64 * KiB
    before = _scrape_all(cluster)
    for _ in range(uploads):
        tus_upload(cluster.files_url, os.urandom(size), chunk)
    # one unfinished upload, for the listing
    r = requests.post(cluster.files_url, headers={**TUS, "Upload-Length": "10"}, timeout=10)
    assert r.status_code == 201
    open_id = r.headers["Location"].rsplit("/", 1)[-1]
    after = _scrape_settled(cluster)

    assert _sum(before, after, P + "uploads_created_total", protocol="tus") == uploads + 1
    assert _sum(before, after, P + "uploads_finished_total", protocol="tus") == uploads
    assert _sum(before, after, P + "bytes_received_total", protocol="tus") == uploads * size
    patches = _sum(before, after, P + "requests_total", protocol="tus", method="PATCH")
    assert patches >= uploads * (size // chunk + 1)
    served = [
        delta(b, a, P + "requests_total", protocol="tus")
        for b, a in zip(before, after, strict=True)
    ]
    assert all(n > 0 for n in served), f"an instance served nothing: {served}"
    assert _sum(before, after, P + "state_errors_total", store="redis") == 0
    for samples in after:
        assert samples[(P + "memory_budget_bytes", frozenset({("kind", "limit")}))] > 0

    config = cluster.gateways[2].workdir / "config.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "uploads", "-c", str(config), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = [json.loads(line)["id"] for line in done.stdout.splitlines()]
    assert listed == [open_id]
