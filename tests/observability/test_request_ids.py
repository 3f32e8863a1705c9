"""Request ids: kept or made, on every answer (and as Qiniu's X-Reqid), on
the log lines the request causes; the JSON log lines parse."""

from __future__ import annotations

import os
import time

import qiniu
import requests

from tests.observability.conftest import JsonLogGateway
from tests.qiniu.harness import region, token

TUS = {"Tus-Resumable": "1.0.0"}


def _lines_of(gw: JsonLogGateway, request_id: str) -> list[dict[str, object]]:
    """The log lines of a request (the access line is written just after the answer)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in gw.log_lines() if line.get("request_id") == request_id]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_incoming_id_is_kept_and_logged(ogw: JsonLogGateway) -> None:
    r = requests.post(
        ogw.files_url,
        headers={**TUS, "Upload-Length": "3", "X-Request-Id": "lb-7f3a.1"},
        timeout=10,
    )
    assert r.status_code == 201 and r.headers["X-Request-Id"] == "lb-7f3a.1"
    upload_id = r.headers["Location"].rsplit("/", 1)[-1]
    r = requests.patch(
        r.headers["Location"],
        data=b"abc",
        headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        timeout=10,
    )
    assert r.status_code == 204
    generated = r.headers["X-Request-Id"]
    assert len(generated) >= 16 and generated != "lb-7f3a.1"
    (created,) = _lines_of(ogw, "lb-7f3a.1")
    assert created["logger"] == "gateway.access" and created["status"] == 201
    assert created["method"] == "POST" and created["protocol"] == "tus"
    assert created["upload_id"] == upload_id and created["bucket"] == "default"
    (patched,) = _lines_of(ogw, generated)
    assert patched["bytes_in"] == 3 and patched["upload_id"] == upload_id
    assert patched["path"] == f"/files/{upload_id}" and isinstance(patched["duration_ms"], float)
    assert str(patched["time"]).endswith("Z") and patched["level"] == "INFO"


def test_implausible_ids_are_replaced(ogw: JsonLogGateway) -> None:
    for bad in ("has space", "x" * 200, "semi;colon"):
        r = requests.get(f"{ogw.url}/healthz", headers={"X-Request-Id": bad}, timeout=10)
        assert r.headers["X-Request-Id"] != bad and len(r.headers["X-Request-Id"]) == 24


def test_errors_and_unknown_paths_carry_an_id(ogw: JsonLogGateway) -> None:
    r = requests.get(f"{ogw.url}/no/such/path", timeout=10)
    assert r.status_code == 404 and r.headers["X-Request-Id"]
    r = requests.head(f"{ogw.files_url}{'0' * 32}", headers=TUS, timeout=10)
    assert r.status_code == 404 and r.headers["X-Request-Id"]


def test_qiniu_reqid_is_the_request_id(ogw: JsonLogGateway) -> None:
    _, info = qiniu.put_data(token(), "obs/reqid.bin", os.urandom(1000), regions=[region(ogw)])
    assert info.status_code == 200
    rid = info.req_id
    (line,) = _lines_of(ogw, rid)
    assert line["protocol"] == "qiniu" and line["key"] == "obs/reqid.bin"
    r = requests.post(f"{ogw.url}/", headers={"X-Request-Id": "qn-1"}, timeout=10)
    assert r.status_code >= 400
    assert r.headers["X-Reqid"] == r.headers["X-Request-Id"] == "qn-1"


def test_query_secrets_stay_out_of_the_access_log(ogw: JsonLogGateway) -> None:
    url = f"{ogw.url}/objects/default/nothing?token=SECRET1&X-Amz-Signature=SECRET2&a=b"
    r = requests.get(url, headers={"X-Request-Id": "redact-1"}, timeout=10)
    assert r.status_code == 404
    (line,) = _lines_of(ogw, "redact-1")
    assert "SECRET" not in str(line) and "a=b" in str(line["path"])
    assert "SECRET" not in ogw.log_path.read_text()
