"""``/metrics`` scraped before and after real client uploads (tuspy, the
official Qiniu SDK) on every backend target: the counters move by exactly
what the clients did."""

from __future__ import annotations

import os
from pathlib import Path

import qiniu
from tusclient import client as tus_client

from tests.observability.conftest import JsonLogGateway
from tests.observability.scrape import delta, scrape, scrape_when, value
from tests.qiniu.harness import BUCKET, MiB, region, token

P = "upload_gateway_"


def test_tuspy_upload_moves_the_counters(ogw: JsonLogGateway, tmp_path: Path) -> None:
    size = 3 * MiB + 5
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(size))
    before = scrape(ogw.url)
    uploader = tus_client.TusClient(ogw.files_url).uploader(str(path), chunk_size=MiB)
    uploader.upload()
    after = scrape_when(
        ogw.url, lambda s: delta(before, s, P + "requests_total", method="PATCH") >= 4
    )

    tus = {"protocol": "tus"}
    assert delta(before, after, P + "requests_total", method="POST", status="201", **tus) == 1
    assert delta(before, after, P + "requests_total", method="PATCH", status="204", **tus) == 4
    assert delta(before, after, P + "request_duration_seconds_count", method="PATCH", **tus) == 4
    assert delta(before, after, P + "bytes_received_total", bucket="default", **tus) == size
    assert delta(before, after, P + "uploads_created_total", bucket="default", **tus) == 1
    assert delta(before, after, P + "uploads_finished_total", bucket="default", **tus) == 1
    assert delta(before, after, P + "uploads_failed_total", **tus) == 0
    # the store was used, only successfully, and locks were taken
    calls = P + "backend_request_duration_seconds_count"
    assert delta(before, after, calls, backend="default", outcome="ok") > 0
    assert delta(before, after, calls, backend="default", outcome="error") == 0
    assert delta(before, after, P + "backend_errors_total") == 0
    assert delta(before, after, P + "lock_wait_seconds_count") >= 4  # one per PATCH
    assert value(after, P + "uploads_in_progress") == 0
    assert value(after, P + "memory_budget_bytes", kind="limit") > 0
    assert value(after, P + "connections_open") >= 1  # the scrape's own


def test_qiniu_sdk_uploads_move_the_counters(ogw: JsonLogGateway, tmp_path: Path) -> None:
    data = os.urandom(MiB + 7)
    path = tmp_path / "v2.bin"
    path.write_bytes(os.urandom(9 * MiB))  # above the SDK's 8 MiB form threshold
    before = scrape(ogw.url)
    _, info = qiniu.put_data(token(), "obs/form.bin", data, regions=[region(ogw)])
    assert info.status_code == 200, info
    _, info = qiniu.put_file_v2(
        token(), "obs/v2.bin", str(path), regions=[region(ogw)], version="v2", part_size=4 * MiB
    )
    assert info.status_code == 200, info
    after = scrape_when(
        ogw.url, lambda s: delta(before, s, P + "requests_total", method="PUT") >= 3
    )

    q = {"protocol": "qiniu"}
    # form: one POST; v2: init, three 4 MiB parts, complete
    assert delta(before, after, P + "requests_total", method="POST", status="200", **q) == 3
    assert delta(before, after, P + "requests_total", method="PUT", status="200", **q) == 3
    assert delta(before, after, P + "requests_total", status="500", **q) == 0
    received = delta(before, after, P + "bytes_received_total", **q)
    # the file bytes plus the form's multipart framing and the small JSON bodies
    assert len(data) + 9 * MiB <= received < len(data) + 9 * MiB + 16 * 1024
    assert delta(before, after, P + "uploads_finished_total", bucket=BUCKET, **q) == 2
    assert delta(before, after, P + "bytes_served_total", **q) > 0
    assert delta(before, after, P + "backend_errors_total") == 0


def test_startup_summary_names_each_bucket_backend(ogw: JsonLogGateway) -> None:
    messages = [
        m.strip()
        for line in ogw.log_lines()
        if line["logger"] == "gateway"
        for m in str(line["message"]).split("\n")
    ]
    kind = ogw.config["backends"]["default"]["type"]
    (line,) = [m for m in messages if m.startswith("bucket default -> backend default:")]
    assert f": {kind}(" in line
    if kind == "s3":  # the integrity mode the start-up probe chose
        assert "integrity=" in line and "integrity=not probed" not in line
    assert any(m.startswith(f"bucket {BUCKET} -> backend default:") for m in messages)
