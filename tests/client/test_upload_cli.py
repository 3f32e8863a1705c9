"""``upload-gateway upload`` against a real gateway on each target: single
files, directories, ``--parallel 4``, a killed client and a restarted gateway
(then the same command again: identical bytes by SHA-256), over tus and Qiniu."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import requests

from tests.client.harness import (
    MiB,
    file_sha256,
    finish,
    percent_sent,
    random_file,
    run,
    start,
    stored,
    tus_offset,
    url_sha256,
    wait_until,
)
from tests.conftest import gateway_config
from tests.qiniu.harness import token
from tests.support.targets import Target
from testservers.gateway import GatewayProcess


@pytest.mark.parametrize("protocol", ["tus", "ietf"])
def test_single_file(cli_gateway: GatewayProcess, tmp_path: Path, protocol: str) -> None:
    src = random_file(tmp_path / "one.bin", 5 * MiB + 7)
    [rec] = run(
        src, "--endpoint", cli_gateway.url, "--protocol", protocol, resume_file=tmp_path / "r.json"
    )
    assert rec["name"] == "one.bin" and rec["size"] == src.stat().st_size
    assert rec["resumed_from"] == 0
    assert url_sha256(rec["url"]) == file_sha256(src)
    assert stored(tmp_path / "r.json") == []  # finished uploads are forgotten


def test_directory_recursive(cli_gateway: GatewayProcess, tmp_path: Path) -> None:
    top = tmp_path / "photos"
    files = [
        random_file(top / "a.bin", 3 * MiB),
        random_file(top / "2024" / "b.jpg", 1000),
        random_file(top / "2024" / "deep" / "c.txt", 1),
    ]
    (top / "empty").write_bytes(b"")
    files.append(top / "empty")
    recs = run(top, "--endpoint", cli_gateway.url, resume_file=tmp_path / "r.json")
    by_name = {r["name"]: r for r in recs}
    assert sorted(by_name) == [
        "photos/2024/b.jpg",
        "photos/2024/deep/c.txt",
        "photos/a.bin",
        "photos/empty",
    ]
    for path in files:
        rec = by_name[path.relative_to(tmp_path).as_posix()]
        assert url_sha256(rec["url"]) == file_sha256(path)
    meta = requests.head(by_name["photos/2024/b.jpg"]["upload"], headers={"Tus-Resumable": "1.0.0"})
    assert "filename cGhvdG9zLzIwMjQvYi5qcGc=" in meta.headers["Upload-Metadata"]


def test_parallel_four_is_a_tus_concatenation(cli_gateway: GatewayProcess, tmp_path: Path) -> None:
    src = random_file(tmp_path / "big.bin", 12 * MiB + 3)
    [rec] = run(
        src, "--endpoint", cli_gateway.url, "--parallel", "4", resume_file=tmp_path / "r.json"
    )
    final = requests.head(rec["upload"], headers={"Tus-Resumable": "1.0.0"}, timeout=10)
    assert final.headers["Upload-Concat"].startswith("final;")
    assert len(final.headers["Upload-Concat"].split(" ")) == 4
    assert url_sha256(rec["url"]) == file_sha256(src)


@pytest.mark.parametrize("protocol", ["tus", "ietf"])
def test_killed_client_resumes_with_the_same_command(
    cli_gateway: GatewayProcess, tmp_path: Path, protocol: str
) -> None:
    src = random_file(tmp_path / "big.bin", 24 * MiB)
    resume = tmp_path / "r.json"
    args = (src, "--endpoint", cli_gateway.url, "--protocol", protocol, "--limit-rate", "6MiB")
    proc = start(*args, resume_file=resume, log=tmp_path / "cli.log")

    def upload_url() -> str:
        entries = stored(resume)
        return str(entries[0]["parts"][0]) if entries and entries[0]["parts"][0] else ""

    # progress lines, not HEAD: a HEAD would make the gateway stop the PATCH. Past
    # half, an S3 store has accepted a part (a cut part's bytes may be dropped)
    wait_until(lambda: percent_sent(tmp_path / "cli.log") >= 55, what="half sent")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    url = upload_url()
    # the gateway saves what the store accepted once it notices the disconnect
    wait_until(lambda: tus_offset(url) > 0, timeout=15, what="the bytes kept")
    at_kill = tus_offset(url)
    assert at_kill < src.stat().st_size
    [rec] = run(*args[:5], resume_file=resume)  # the same command, without the rate limit
    assert rec["upload"] == url  # no second creation
    assert at_kill <= rec["resumed_from"] < src.stat().st_size
    assert url_sha256(rec["url"]) == file_sha256(src)


def test_gateway_restart_mid_upload(client_target: Target, tmp_path: Path) -> None:
    """The client retries with backoff while the gateway is away and goes on
    from the offset the restarted gateway reports."""
    src = random_file(tmp_path / "big.bin", 24 * MiB)
    resume = tmp_path / "r.json"
    log = tmp_path / "cli.log"
    with GatewayProcess(gateway_config(client_target), workdir=tmp_path / "gw") as gw:
        proc = start(
            *(src, "--endpoint", gw.url, "--limit-rate", "6MiB", "--parallel", "2"),
            resume_file=resume,
            log=log,
        )

        wait_until(lambda: percent_sent(log) >= 20, what="a fifth sent")
        gw.restart()
        [rec] = finish(proc, log)
        assert "retrying in" in log.read_text()
        assert url_sha256(rec["url"]) == file_sha256(src)


def qiniu_args(gw: GatewayProcess, key: str) -> tuple[str, ...]:
    return ("--protocol", "qiniu", "--endpoint", gw.url, "--token", token(), "--key", key)


def test_qiniu_single_and_parallel_parts(cli_gateway: GatewayProcess, tmp_path: Path) -> None:
    small = random_file(tmp_path / "small.txt", 1234)
    big = random_file(tmp_path / "big.bin", 9 * MiB + 5)
    recs = run(
        small,
        big,
        *qiniu_args(cli_gateway, "cli/"),
        "--parallel",
        "4",
        "--chunk-size",
        "2MiB",
        resume_file=tmp_path / "r.json",
    )
    assert [r["key"] for r in recs] == ["cli/small.txt", "cli/big.bin"]
    for rec, src in zip(recs, (small, big), strict=True):
        assert url_sha256(rec["url"]) == file_sha256(src)


def test_qiniu_killed_client_resumes(cli_gateway: GatewayProcess, tmp_path: Path) -> None:
    src = random_file(tmp_path / "big.bin", 20 * MiB)
    resume = tmp_path / "r.json"
    args = (src, *qiniu_args(cli_gateway, "resume.bin"))
    proc = start(*args, "--limit-rate", "6MiB", resume_file=resume, log=tmp_path / "cli.log")
    wait_until(lambda: bool(stored(resume)), what="an upload id")
    upload_id = stored(resume)[0]["upload_id"]

    def parts_held() -> int:
        url = f"{cli_gateway.url}/buckets/photos/objects/cmVzdW1lLmJpbg==/uploads/{upload_id}"
        r = requests.get(url, headers={"Authorization": f"UpToken {token()}"}, timeout=10)
        return len(r.json().get("parts") or []) if r.status_code == 200 else 0

    wait_until(lambda: parts_held() >= 2, what="two parts stored")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    [rec] = run(*args, resume_file=resume)
    assert rec["upload"] == upload_id
    assert rec["resumed_from"] >= 8 * MiB
    assert url_sha256(rec["url"]) == file_sha256(src)
