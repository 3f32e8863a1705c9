"""``upload-gateway uploads`` lists, expires and terminates unfinished
uploads, on SQLite and on Redis (the state a whole cluster shares)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from testservers.gateway import GatewayProcess
from testservers.redis import RedisServer

ROOT = Path(__file__).resolve().parents[2]
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer(persist=False) as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def gw(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GatewayProcess]:
    config: dict[str, Any] = {
        "backends": {"default": {"type": "local", "root": str(tmp_path / "data")}},
        "buckets": {"default": {"backend": "default"}},
    }
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
        config["state"] = {"type": "redis", "url": url}
        config["locks"] = {"type": "redis", "url": url}
    with GatewayProcess(config, workdir=tmp_path / "gw") as gateway:
        yield gateway


def _uploads(gw: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "uploads", "-c", str(gw.workdir / "config.yaml"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _start(gw: GatewayProcess, length: int, first: bytes) -> str:
    r = requests.post(
        gw.files_url,
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": "filename YS5iaW4="},
        timeout=10,
    )
    assert r.status_code == 201
    url = r.headers["Location"]
    headers = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    assert requests.patch(url, data=first, headers=headers, timeout=10).status_code == 204
    return str(url)


def _listed(gw: GatewayProcess) -> dict[str, dict[str, Any]]:
    done = _uploads(gw, "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return {row["id"]: row for row in rows}


def test_list_expire_terminate(gw: GatewayProcess) -> None:
    a = _start(gw, 100, b"x" * 10)
    b = _start(gw, 50, b"y" * 20)
    done = _start(gw, 5, b"12345")  # finished: never listed, never touched
    a_id, b_id, done_id = (u.rsplit("/", 1)[-1] for u in (a, b, done))

    listed = _listed(gw)
    assert set(listed) == {a_id, b_id}
    assert listed[a_id]["offset"] == 10 and listed[a_id]["size"] == 100
    assert listed[a_id]["protocol"] == "tus" and listed[a_id]["bucket"] == "default"
    assert 0 <= listed[a_id]["idle"] < 120 and listed[a_id]["key"] == a_id
    table = _uploads(gw)  # list is the default, as a table
    assert table.returncode == 0 and table.stdout.split()[:2] == ["ID", "PROTOCOL"]
    assert "10/100" in table.stdout and "20/50" in table.stdout and done_id not in table.stdout
    expired = _uploads(gw, "expire", a_id)
    assert expired.returncode == 0 and a_id in expired.stdout, expired.stderr
    assert requests.head(a, headers=TUS, timeout=10).status_code == 410
    terminated = _uploads(gw, "terminate", b_id)
    assert terminated.returncode == 0, terminated.stderr
    assert requests.head(b, headers=TUS, timeout=10).status_code == 410
    assert _listed(gw) == {}

    refused = _uploads(gw, "terminate", done_id)
    assert refused.returncode == 1 and "finished" in refused.stderr
    assert requests.head(done, headers=TUS, timeout=10).status_code == 200
