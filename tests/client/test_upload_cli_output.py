"""What a person sees: rich bars in a terminal (checked in a pseudo-terminal),
one plain line per second otherwise; and which failures are retried."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.client.harness import (
    MiB,
    command,
    env,
    file_sha256,
    percent_sent,
    random_file,
    run,
    start,
    stored,
    url_sha256,
    wait_until,
)
from tests.conftest import gateway_config
from tests.qiniu.harness import qiniu_config
from tests.support.targets import LocalTarget
from testservers.gateway import GatewayProcess


def _in_terminal(args: list[str], stdout_too: bool = True) -> tuple[int, str, str]:
    """Run with stderr (and stdout, unless not ``stdout_too``: then a pipe)
    on a pseudo-terminal; (status, terminal output, piped stdout)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        args,
        stdout=slave if stdout_too else subprocess.PIPE,
        stderr=slave,
        env={**env(), "TERM": "xterm-256color", "COLUMNS": "120"},
    )
    os.close(slave)
    seen = bytearray()
    while True:
        try:
            block = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not block:
            break
        seen += block
    os.close(master)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(timeout=60), seen.decode(errors="replace"), stdout


def test_progress_bars_in_a_terminal(local_gateway: GatewayProcess, tmp_path: Path) -> None:
    src = random_file(tmp_path / "movie.bin", 6 * MiB)
    args = command(
        src, "--endpoint", local_gateway.url, "--limit-rate", "4MiB", resume_file=tmp_path / "r"
    )
    args.remove("--json")
    status, terminal, _ = _in_terminal(args)
    assert status == 0, terminal
    assert "\x1b[" in terminal  # drawn with escape sequences, redrawn in place
    assert "━" in terminal  # rich's bar
    assert "total (1 files)" in terminal and "movie.bin" in terminal
    assert re.search(r"\d+(\.\d)?/6\.3 MB", terminal)  # bytes sent / size
    assert re.search(r"\d(\.\d)? MB/s", terminal)  # rate
    assert "100%" in terminal
    assert "done movie.bin" in terminal
    assert not re.search(r"files .* ETA", terminal)  # not the plain lines
    # the file URL (stdout, this terminal too) printed whole around the bars
    [url] = re.findall(re.escape(local_gateway.url) + r"/\S+", terminal)
    assert url_sha256(url) == file_sha256(src)


def test_plain_lines_when_stdout_is_not_a_terminal(
    local_gateway: GatewayProcess, tmp_path: Path
) -> None:
    """``upload ... | script`` in a terminal: progress on the terminal
    (stderr) as plain lines, the results on the pipe."""
    src = random_file(tmp_path / "movie.bin", 3 * MiB)
    args = command(
        src, "--endpoint", local_gateway.url, "--limit-rate", "2MiB", resume_file=tmp_path / "r"
    )
    status, terminal, stdout = _in_terminal(args, stdout_too=False)
    assert status == 0, terminal
    assert "\x1b[" not in terminal and "━" not in terminal
    assert re.search(r"[01]/1 files [\d.]+ [kM]?B/3\.1 MB", terminal), terminal
    assert "done movie.bin" in terminal
    url = stdout.split('"url": "')[1].split('"')[0]
    assert url_sha256(url) == file_sha256(src)


def test_plain_lines_when_not_a_terminal(local_gateway: GatewayProcess, tmp_path: Path) -> None:
    src = random_file(tmp_path / "movie.bin", 6 * MiB)
    args = command(
        src, "--endpoint", local_gateway.url, "--limit-rate", "2MiB", resume_file=tmp_path / "r"
    )
    started = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, env=env(), timeout=60)
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if " files " in ln]
    assert "\x1b[" not in proc.stderr
    # about one line per second of the ~3 s upload, and the totals at the end
    assert 3 <= len(lines) <= took + 2, proc.stderr
    for line in lines[:-1]:
        assert re.fullmatch(
            r"[01]/1 files [\d.]+ [kM]?B/6\.3 MB [\d.]+% [\d.]+ [kM]?B/s ETA (\d+s|\?) \[(movie\.bin|-)\]",
            line,
        ), line
    assert "done movie.bin" in proc.stderr.splitlines()
    assert re.fullmatch(r"1/1 files 6\.3 MB/6\.3 MB 100\.0% .*", lines[-1]), lines[-1]


def test_bytes_the_server_has_are_already_stored(
    local_gateway: GatewayProcess, tmp_path: Path
) -> None:
    """The same bytes again (another file name, a fresh resume file): the
    gateway offers instant upload, the CLI declares the file's digest and
    says the file was already stored; nothing is sent, the object is whole."""
    first = random_file(tmp_path / "one.bin", 2 * MiB)
    [record] = run(first, "--endpoint", local_gateway.url, resume_file=tmp_path / "r1")
    assert record["instant"] is False
    again = tmp_path / "again.bin"
    again.write_bytes(first.read_bytes())
    args = command(again, "--endpoint", local_gateway.url, resume_file=tmp_path / "r2")
    proc = subprocess.run(args, capture_output=True, text=True, env=env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "done again.bin (already stored: the server had these bytes, none sent)" in (
        proc.stderr.splitlines()
    ), proc.stderr
    [second] = [json.loads(line) for line in proc.stdout.splitlines()]
    assert second["instant"] is True and second["url"] != record["url"]
    assert url_sha256(second["url"]) == file_sha256(first)


def test_upload_gone_from_the_server_starts_over(
    local_gateway: GatewayProcess, tmp_path: Path
) -> None:
    """A stored URL whose upload was terminated (410/404) is not retried: a
    new upload is created and the file arrives whole."""
    src = random_file(tmp_path / "a.bin", 3 * MiB)
    resume = tmp_path / "r.json"
    r = requests.post(
        local_gateway.files_url,
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(3 * MiB)},
        timeout=10,
    )
    old = r.headers["Location"]
    run(src, "--endpoint", local_gateway.url, "--no-resume", resume_file=resume)  # warm-up
    # plant the terminated upload as this file's stored upload
    from gateway.client.files import expand

    [local] = expand([str(src)])
    fp = local.fingerprint("tus", f"{local_gateway.url}/files/", 1, "a.bin", {})
    resume.write_text(f'{{"{fp}": {{"name": "a.bin", "parts": ["{old}"], "final": null}}}}')
    requests.delete(old, headers={"Tus-Resumable": "1.0.0"}, timeout=10)
    proc = subprocess.run(
        command(src, "--endpoint", local_gateway.url, resume_file=resume),
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "is gone (HTTP 410)" in proc.stderr and "starting a new upload" in proc.stderr
    assert "retrying" not in proc.stderr
    assert stored(resume) == []
    url = proc.stdout.split('"url": "')[1].split('"')[0]
    assert url_sha256(url) == file_sha256(src)


def test_a_refused_token_is_not_retried(tmp_path: Path) -> None:
    target = LocalTarget()
    src = random_file(tmp_path / "a.bin", 2 * MiB)
    with GatewayProcess(qiniu_config(target)) as gw:
        forged = (
            "test-access-key:c2lnbmF0dXJl:eyJzY29wZSI6InBob3RvcyIsImRlYWRsaW5lIjo0MTAyNDQ0ODAwfQ=="
        )
        started = time.monotonic()
        proc = subprocess.run(
            command(
                src,
                "--protocol",
                "qiniu",
                "--endpoint",
                gw.url,
                "--token",
                forged,
                resume_file=tmp_path / "r",
            ),
            capture_output=True,
            text=True,
            env=env(),
            timeout=60,
        )
    assert proc.returncode == 1
    assert "HTTP 401" in proc.stderr, proc.stderr
    assert "retrying" not in proc.stderr
    assert time.monotonic() - started < 20


def test_token_and_jwt_credentials(tmp_path: Path) -> None:
    """--token sends ``Authorization: UpToken`` (its saveKey names the object),
    --jwt sends ``Bearer``; without a credential the 401 is reported, not retried."""
    import jwt
    import qiniu

    secret = "a-jwt-secret-of-the-tests-0123456789"
    config = gateway_config(
        LocalTarget(),
        buckets={"default": {"backend": "default", "anonymous_upload": False}},
        qiniu={"keys": [{"access_key": "cli-ak", "secret_key": "cli-sk"}]},
        access={"jwt": {"algorithms": ["HS256"], "secret": secret}},
    )
    src = random_file(tmp_path / "report.pdf", MiB + 1)
    token = qiniu.Auth("cli-ak", "cli-sk").upload_token(
        "default", None, 3600, {"saveKey": "cli/$(fname)"}
    )
    bearer = jwt.encode(
        {"exp": int(time.time()) + 3600, "policy": {"scope": "default"}}, secret, "HS256"
    )
    with GatewayProcess(config) as gw:
        [rec] = run(src, "--endpoint", gw.url, "--token", token, resume_file=tmp_path / "r1")
        assert rec["url"] == f"{gw.url}/objects/default/cli/report.pdf"
        assert url_sha256(rec["url"]) == file_sha256(src)
        [rec] = run(src, "--endpoint", gw.url, "--jwt", bearer, resume_file=tmp_path / "r2")
        assert url_sha256(rec["url"]) == file_sha256(src)
        proc = subprocess.run(
            command(src, "--endpoint", gw.url, resume_file=tmp_path / "r3"),
            capture_output=True, text=True, env=env(), timeout=60,
        )  # fmt: skip
    assert proc.returncode == 1
    assert "HTTP 401" in proc.stdout and "retrying" not in proc.stderr


def test_ctrl_c_says_how_to_resume(local_gateway: GatewayProcess, tmp_path: Path) -> None:
    src = random_file(tmp_path / "big.bin", 16 * MiB)
    resume = tmp_path / "r.json"
    log = tmp_path / "cli.log"
    proc = start(
        src, "--endpoint", local_gateway.url, "--limit-rate", "2MiB", resume_file=resume, log=log
    )
    wait_until(lambda: percent_sent(log) >= 30, what="a third sent")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert "interrupted: run the same command again to resume" in log.read_text()
    [rec] = run(src, "--endpoint", local_gateway.url, resume_file=resume)
    assert rec["resumed_from"] > 0
    assert url_sha256(rec["url"]) == file_sha256(src)
