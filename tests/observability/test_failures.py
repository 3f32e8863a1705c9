"""Failures explained: a store stopped mid-upload gives the client a 503
and the log an ERROR line with the cause and the request id the client
saw; the metrics count it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.observability.conftest import JsonLogGateway
from tests.observability.scrape import delta, scrape, scrape_when
from testservers.fastdfs_server import FastDFSServer

TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}
P = "upload_gateway_"


@pytest.fixture(scope="module")
def fastdfs() -> Iterator[FastDFSServer]:
    with FastDFSServer() as server:
        yield server


def test_store_stopped_mid_upload(fastdfs: FastDFSServer) -> None:
    config = {
        "backends": {"default": {"type": "fastdfs", "trackers": [fastdfs.tracker_addr]}},
        "buckets": {"default": {"backend": "default"}},
    }
    with JsonLogGateway(config) as gw:
        r = requests.post(gw.files_url, headers={**TUS, "Upload-Length": "2000"}, timeout=10)
        assert r.status_code == 201
        url = r.headers["Location"]
        r = requests.patch(
            url, data=b"a" * 1000, headers={**PATCH, "Upload-Offset": "0"}, timeout=10
        )
        assert r.status_code == 204
        before = scrape(gw.url)
        fastdfs.stop_storage()
        try:
            r = requests.patch(
                url, data=b"b" * 1000, headers={**PATCH, "Upload-Offset": "1000"}, timeout=30
            )
        finally:
            fastdfs.start_storage()
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
        rid = r.headers["X-Request-Id"]
        after = scrape_when(gw.url, lambda s: delta(before, s, P + "uploads_failed_total") >= 1)

        deadline = time.monotonic() + 5
        errors: list[dict[str, object]] = []
        while not errors and time.monotonic() < deadline:
            errors = [
                line for line in gw.log_lines()
                if line["level"] == "ERROR" and line.get("request_id") == rid
            ]  # fmt: skip
            time.sleep(0.05)
        (error,) = errors
        message = str(error["message"])
        assert "PATCH" in message and "503" in message
        assert "ServiceUnavailable" in message and "BackendUnavailable" in message
        assert error["upload_id"] == url.rsplit("/", 1)[-1] and error["protocol"] == "tus"

        assert delta(before, after, P + "requests_total", method="PATCH", status="503") == 1
        assert delta(before, after, P + "uploads_failed_total", protocol="tus") == 1
        assert delta(before, after, P + "backend_errors_total", backend="default") >= 1

        # the store back: the upload resumes where the store left it
        head = requests.head(url, headers=TUS, timeout=10)
        offset = int(head.headers["Upload-Offset"])
        r = requests.patch(
            url, data=b"c" * (2000 - offset), headers={**PATCH, "Upload-Offset": str(offset)},
            timeout=10,
        )  # fmt: skip
        assert r.status_code == 204, r.text


def test_readyz_names_each_dependency(fastdfs: FastDFSServer) -> None:
    config = {
        "backends": {"default": {"type": "fastdfs", "trackers": [fastdfs.tracker_addr]}},
        "buckets": {"default": {"backend": "default"}},
    }
    with JsonLogGateway(config) as gw:
        ready = requests.get(f"{gw.url}/readyz", timeout=10)
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "ok"
        assert set(body["checks"]) == {"state", "locks", "backend:default"}
        for check in body["checks"].values():
            assert check["status"] == "ok" and check["latency_ms"] >= 0
        fastdfs.stop()  # tracker and storage
        try:
            down = requests.get(f"{gw.url}/readyz", timeout=10)
        finally:
            fastdfs.start()
        assert down.status_code == 503
        checks = down.json()["checks"]
        assert checks["backend:default"]["status"] == "error" and checks["backend:default"]["error"]
        assert checks["state"]["status"] == "ok"
