"""The upload page and the ops view in a real browser: Debian's chromium
driven by playwright-core (tests/js/ui_browser.mjs), against a real gateway.
Screenshots go to test-artifacts/ui/ (the README's images are copies)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.client.harness import MiB, command, env, file_sha256, random_file, url_sha256
from tests.conftest import gateway_config, get_target
from tests.support.browser import run_browser_script
from tests.support.cutproxy import CutProxy
from testservers.gateway import ROOT, GatewayProcess

ARTIFACTS = ROOT / "test-artifacts" / "ui"
OPS_TOKEN = "ops-token-for-the-tests"


def browse(scenario: str, **args: Any) -> dict[str, Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    result = run_browser_script(
        "ui_browser.mjs", scenario, json.dumps({"shots": str(ARTIFACTS), **args})
    )
    assert result["ok"], result.get("error")
    assert result["foreign"] == []  # no request to any other origin
    # the browser logs every failed load: a 409 after a reload (the old PATCH's
    # bytes were saved after the HEAD answered) is the client re-syncing, and
    # requests while offline fail; nothing else may be logged as an error
    expected = ("status of 409", "net::ERR_INTERNET_DISCONNECTED")
    errors = [e for e in result["consoleErrors"] if not any(x in e for x in expected)]
    assert errors == []
    return result


def ui_config(**ui: Any) -> dict[str, Any]:
    return gateway_config(get_target("local"), ui={"ops_token": OPS_TOKEN, **ui})


@pytest.fixture(scope="module")
def ui_gateway() -> Iterator[GatewayProcess]:
    with GatewayProcess(ui_config()) as gw:
        yield gw


@pytest.fixture
def slow_proxy(ui_gateway: GatewayProcess) -> Iterator[CutProxy]:
    """The browser's uplink: 4 MB/s, so that a 20 MB upload takes seconds."""
    with CutProxy(ui_gateway.port) as proxy:
        proxy.rate = 4_000_000
        yield proxy


def test_upload_reload_at_half_then_resume(slow_proxy: CutProxy, tmp_path: Path) -> None:
    src = random_file(tmp_path / "twenty.bin", 20 * MiB)
    seen = browse("upload", base=slow_proxy.url, file=str(src))
    assert seen["landed"] == f"{slow_proxy.url}/ui/"  # GET / redirects to the page
    assert 45 <= seen["percentBeforeReload"] < 100
    assert any("twenty.bin" in p for p in seen["pendingAfterReload"])  # listed after the reload
    tus = [r for r in seen["requests"] if "/files/" in r["url"]]
    assert [r["method"] for r in tus].count("POST") == 1  # no second creation
    assert "HEAD" in [r["method"] for r in tus]  # asked for the offset after the reload
    assert seen["note"].startswith("resumed at")
    assert not [k for k in seen["storedAfter"] if k.startswith("upload-gateway:tus:")]
    assert url_sha256(seen["fileUrl"]) == file_sha256(src)  # byte-identical
    assert (ARTIFACTS / "upload-page.png").stat().st_size > 10_000


def test_cancel_terminates_the_upload(slow_proxy: CutProxy, tmp_path: Path) -> None:
    src = random_file(tmp_path / "cancelled.bin", 20 * MiB)
    seen = browse("cancel", base=slow_proxy.url, file=str(src))
    assert "DELETE" in [r["method"] for r in seen["requests"]]
    assert not [k for k in seen["storedAfter"] if k.startswith("upload-gateway:tus:")]
    r = requests.head(seen["uploadUrl"], headers={"Tus-Resumable": "1.0.0"}, timeout=10)
    assert r.status_code in (404, 410)


def test_a_token_from_the_query(tmp_path: Path) -> None:
    """A bucket that needs a credential: the page sends ?token= as
    ``Authorization: UpToken`` and the token's saveKey names the object."""
    import qiniu

    config = ui_config()
    config["buckets"] = {"default": {"backend": "default", "anonymous_upload": False}}
    config["qiniu"] = {"keys": [{"access_key": "page-ak", "secret_key": "page-sk"}]}
    src = random_file(tmp_path / "holiday.bin", 2 * MiB)
    token = qiniu.Auth("page-ak", "page-sk").upload_token(
        "default", None, 3600, {"saveKey": "page/$(fname)"}
    )
    with GatewayProcess(config) as gw:
        anonymous = requests.post(
            gw.files_url, headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1"}, timeout=10
        )
        assert anonymous.status_code == 401
        seen = browse("token", base=gw.url, file=str(src), token=token)
        assert seen["addressBar"] == f"{gw.url}/ui/"  # the token left the address bar
        assert seen["fileUrl"] == f"{gw.url}/objects/default/page/holiday.bin"
        assert url_sha256(seen["fileUrl"]) == file_sha256(src)


def test_a_lost_network_is_survived(slow_proxy: CutProxy, tmp_path: Path) -> None:
    src = random_file(tmp_path / "offline.bin", 12 * MiB)
    seen = browse("offline", base=slow_proxy.url, file=str(src))
    assert "retrying" in seen["noteWhileOffline"]
    tus = [r for r in seen["requests"] if "/files/" in r["url"]]
    assert [r["method"] for r in tus].count("POST") == 1
    assert url_sha256(seen["fileUrl"]) == file_sha256(src)


def test_ops_view_shows_an_upload_live_then_finished(tmp_path: Path) -> None:
    src = random_file(tmp_path / "watched.bin", 24 * MiB)
    with GatewayProcess(ui_config()) as gw:
        uploaded: dict[str, Any] = {}

        def upload() -> None:
            # starts once the page polls; 4 MiB/s, so it is seen for several seconds
            proc = subprocess.run(
                command(src, "--endpoint", gw.url, "--limit-rate", "4MiB", resume_file=tmp_path / "r"),
                capture_output=True, text=True, env=env(), timeout=120,
            )  # fmt: skip
            uploaded["proc"] = proc

        timer = threading.Timer(3.0, upload)
        timer.start()
        seen = browse("ops", base=gw.url, token=OPS_TOKEN)
        timer.join()
        assert url_sha256(seen["finishedUrl"]) == file_sha256(src)
    proc = uploaded["proc"]
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert seen["addressBar"] == f"{gw.url}/ui/ops"  # the token left the address bar
    assert seen["id"] == record["upload"].rsplit("/", 1)[1]
    assert "MB/s" in seen["liveRow"] and "tus" in seen["liveRow"]
    assert seen["stillInProgress"] == 0
    assert "25.2 MB" in seen["finishedRow"]
    assert any(b.startswith("state: ok") for b in seen["readiness"])
    [backend] = seen["backends"]  # store requests and their mean latency, from the metrics
    assert backend.startswith("default") and " ms" in backend
    assert seen["chartPoints"] >= 5
    assert (ARTIFACTS / "ops-page.png").stat().st_size > 10_000


def test_pages_stay_on_this_origin_and_can_be_turned_off(ui_gateway: GatewayProcess) -> None:
    page = requests.get(f"{ui_gateway.url}/ui/", timeout=10)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert requests.get(f"{ui_gateway.url}/ui/static/..%2fops.py", timeout=10).status_code == 404
    refused = requests.get(f"{ui_gateway.url}/ui/ops/snapshot", timeout=10)
    assert refused.status_code == 401 and "Bearer" in refused.json()["error"]
    wrong = requests.get(
        f"{ui_gateway.url}/ui/ops/snapshot", headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert wrong.status_code == 401
    assert "refused a snapshot request" in ui_gateway.log()
    with GatewayProcess(gateway_config(get_target("local"), ui={"enabled": False})) as off:
        assert requests.get(f"{off.url}/", timeout=10).status_code == 404
        assert requests.get(f"{off.url}/ui/", timeout=10).status_code == 404
        assert requests.get(f"{off.url}/ui/ops", timeout=10).status_code == 404  # no token: off


def test_every_file_a_page_names_is_served(ui_gateway: GatewayProcess) -> None:
    """The pages' scripts and styles are package files (pyproject package-data
    ships static/*) served with their types; nothing else is in static/."""
    import re

    import gateway.ui.assets as assets

    named: set[str] = set()
    for page in ("/ui/", "/ui/ops"):
        html = requests.get(f"{ui_gateway.url}{page}", timeout=10).text
        for ref in re.findall(r'(?:src|href)="(/ui/[^"]+)"', html):
            r = requests.get(f"{ui_gateway.url}{ref}", timeout=10)
            assert r.status_code == 200, ref
            assert r.headers["Content-Type"].split(";")[0] in ("text/javascript", "text/css"), ref
            named.add(ref.rsplit("/", 1)[1])
    assert named | {"index.html", "ops.html"} == {p.name for p in assets.STATIC.iterdir()}
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"gateway.ui" = ["static/*"]' in pyproject


def test_ops_snapshot_shows_a_qiniu_session_as_one_row(tmp_path: Path) -> None:
    """Qiniu v2 parts are counted into their session's row (key, bytes, parts)."""
    from tests.client.harness import percent_sent, start, wait_until
    from tests.qiniu.harness import qiniu_config, token

    config = qiniu_config(get_target("local"))
    config["ui"] = {"ops_token": OPS_TOKEN}
    src = random_file(tmp_path / "big.bin", 16 * MiB)
    log = tmp_path / "cli.log"
    with GatewayProcess(config) as gw:
        proc = start(
            src, "--protocol", "qiniu", "--endpoint", gw.url, "--token", token(),
            "--key", "ops/big.bin", "--limit-rate", "4MiB", resume_file=tmp_path / "r", log=log,
        )  # fmt: skip
        wait_until(lambda: percent_sent(log) >= 60, what="more than half sent")
        proc.kill()
        proc.wait()
        r = requests.get(
            f"{gw.url}/ui/ops/snapshot",
            headers={"Authorization": f"Bearer {OPS_TOKEN}"},
            timeout=10,
        )
    [row] = r.json()["uploads"]
    assert (row["protocol"], row["kind"], row["bucket"], row["key"]) == (
        "qiniu",
        "session",
        "photos",
        "ops/big.bin",
    )
    assert row["parts"] >= 2 and 2 * 4 * MiB <= row["bytes"] <= row["parts"] * 4 * MiB


def test_ops_list_pages_through_every_unfinished_upload(tmp_path: Path) -> None:
    """More unfinished uploads than a page: every one is reached, newest
    first, by the snapshot's cursor and by the page's buttons."""
    from gateway.ui.ops import PAGE

    total = 2 * PAGE + 30
    with GatewayProcess(ui_config()) as gw, requests.Session() as http:
        created = []
        for _ in range(total):
            r = http.post(
                gw.files_url,
                headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10"},
                timeout=10,
            )
            assert r.status_code == 201
            created.append(r.headers["Location"].rsplit("/", 1)[1])
        auth = {"Authorization": f"Bearer {OPS_TOKEN}"}
        walked: list[list[str]] = []
        after = None
        while True:
            params = {"after": after} if after else {}
            snap = http.get(f"{gw.url}/ui/ops/snapshot", headers=auth, params=params, timeout=10)
            body = snap.json()
            walked.append([u["id"] for u in body["uploads"]])
            assert body["page"]["records"] == len(walked[-1])
            after = body["page"]["next"]
            if after is None:
                break
        for bad in ("nonsense", "inf:x", "1.5:", "1" * 300):
            r = http.get(f"{gw.url}/ui/ops/snapshot", headers=auth, params={"after": bad})
            assert r.status_code == 400 and "after" in r.json()["error"]
        seen = browse("opsPages", base=gw.url, token=OPS_TOKEN)
    assert [len(p) for p in walked] == [PAGE, PAGE, 30]
    flat = [i for page in walked for i in page]
    assert sorted(flat) == sorted(created)  # every one, once
    assert flat[:5] == created[::-1][:5]  # the most recently written first
    pages = seen["pages"]
    assert [len(p["ids"]) for p in pages] == [PAGE, PAGE, 30]
    assert [p["ids"] for p in pages] == walked
    assert [(p["newer"], p["older"]) for p in pages] == [(False, True), (True, True), (True, False)]
    assert "older ones on the next page" in pages[0]["count"]
    assert seen["backIds"] == walked[1]


def test_ops_first_page_shows_what_arrives_now(tmp_path: Path) -> None:
    """An upload receiving one long PATCH was last saved before a page of
    newer uploads: the first page still shows it, as receiving."""
    from gateway.ui.ops import PAGE

    tus = {"Tus-Resumable": "1.0.0"}
    with GatewayProcess(ui_config()) as gw, requests.Session() as http:
        r = http.post(gw.files_url, headers={**tus, "Upload-Length": str(8 * MiB)}, timeout=10)
        slow = r.headers["Location"]
        for _ in range(PAGE + 10):
            http.post(gw.files_url, headers={**tus, "Upload-Length": "10"}, timeout=10)
        parts = urlsplit(slow)
        head = (
            f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
            "Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {8 * MiB}\r\n\r\n"
        ).encode()
        auth = {"Authorization": f"Bearer {OPS_TOKEN}"}
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall(head + b"x" * MiB)  # then silence: the PATCH stays open
            deadline = time.monotonic() + 15
            row = None
            while row is None and time.monotonic() < deadline:
                body = http.get(f"{gw.url}/ui/ops/snapshot", headers=auth, timeout=10).json()
                row = next((u for u in body["uploads"] if slow.endswith(u["id"])), None)
                if row is None or row["bytes"] < MiB:
                    row = None
                    time.sleep(0.2)
        assert row is not None, "the upload receiving now is not on the first page"
        assert row["receiving"] and body["uploads"][0] == row  # receiving rows come first
        assert body["page"]["records"] == PAGE and body["page"]["next"] is not None
