"""/metrics behind its token, or on its own port; the start-up
summary; ``--version``; the access log switched off."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from tests.observability.conftest import JsonLogGateway
from testservers.gateway import GatewayProcess
from testservers.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def _local(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "backends": {"default": {"type": "local", "root": str(tmp_path / "data")}},
        "buckets": {"default": {"backend": "default"}},
        **extra,
    }


def test_metrics_need_the_token(tmp_path: Path) -> None:
    with GatewayProcess(_local(tmp_path, metrics={"token": "s3cr3t-t0ken"})) as gw:
        assert requests.get(f"{gw.url}/metrics", timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert requests.get(f"{gw.url}/metrics", headers=wrong, timeout=10).status_code == 401
        right = {"Authorization": "Bearer s3cr3t-t0ken"}
        r = requests.get(f"{gw.url}/metrics", headers=right, timeout=10)
        assert r.status_code == 200 and "upload_gateway_requests_total" in r.text
        assert r.headers["Content-Type"].startswith("text/plain")
        assert "s3cr3t-t0ken" not in gw.log()


def test_metrics_on_their_own_port(tmp_path: Path) -> None:
    port = free_port()
    with GatewayProcess(_local(tmp_path, metrics={"port": port})) as gw:
        assert requests.get(f"{gw.url}/metrics", timeout=10).status_code == 404
        requests.get(f"{gw.url}/healthz", timeout=10)
        r = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert r.status_code == 200
        assert 'upload_gateway_requests_total{method="GET",protocol="ops",status="200"}' in r.text


def test_startup_summary_and_no_access_log(tmp_path: Path) -> None:
    class Quiet(JsonLogGateway):
        extra_args = ("--log-format", "json", "--no-access-log")

    config = _local(tmp_path, state={"type": "sqlite", "path": str(tmp_path / "s.db")})
    with Quiet(config) as gw:
        requests.get(f"{gw.url}/healthz", timeout=10)
        gw.stop()
        records = [str(line["message"]) for line in gw.log_lines()]
    (summary,) = [r for r in records if r.startswith("upload-gateway ")]
    # the start-up summary is one record, a line per fact
    assert "\n  bucket default -> backend default:" in summary and "\n  metrics:" in summary
    messages = [m.strip() for r in records for m in r.split("\n")]
    assert any(m.startswith("upload-gateway ") and "listening on http://127.0.0.1:" in m
               for m in messages)  # fmt: skip
    assert any(m.startswith("bucket default -> backend default: local(root=") for m in messages)
    assert any(m.startswith("state sqlite (") and "locks memory" in m for m in messages)
    assert any(m.startswith("protocols: tus and IETF at /files/") for m in messages)
    assert any(
        m.startswith("credentials: upload tokens (0 key pair(s)); hooks: none") for m in messages
    )
    assert any("anonymous tus uploads, open downloads" in m for m in messages)
    assert any(m.startswith("shutting down: waiting up to 5 s") for m in messages)
    assert any(m.startswith("shutdown: waited for") for m in messages)
    assert not any("GET /healthz" in m for m in messages)


def test_metrics_off(tmp_path: Path) -> None:
    with GatewayProcess(_local(tmp_path, metrics={"enabled": False})) as gw:
        assert requests.get(f"{gw.url}/metrics", timeout=10).status_code == 404
        r = requests.get(f"{gw.url}/readyz", timeout=10)  # ids and ops endpoints stay
        assert r.status_code == 200 and r.headers["X-Request-Id"]


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--version"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("upload-gateway 0.")
