"""Running ``upload-gateway upload`` as a user would: a separate process,
its own resume file, results read from ``--json``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from testservers.gateway import ROOT

MiB = 1024 * 1024


def command(*args: str | Path, resume_file: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gateway",
        "upload",
        *map(str, args),
        "--resume-file",
        str(resume_file),
        "--json",
    ]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args: str | Path, resume_file: Path, timeout: float = 180) -> list[dict[str, Any]]:
    """Run to the end; the JSON records of the files (exit status 0 asserted)."""
    proc = subprocess.run(
        command(*args, resume_file=resume_file),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def start(*args: str | Path, resume_file: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            command(*args, resume_file=resume_file),
            stdout=subprocess.PIPE,
            stderr=out,
            env=env(),
            preexec_fn=_default_sigint,
        )


def _default_sigint() -> None:
    """Ctrl-C reaches the CLI even when the tests run in a background job
    (``cmd &`` in a script: SIGINT ignored, and the ignoring is inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(proc: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> list[dict[str, Any]]:
    stdout, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, log.read_text() + stdout.decode()
    return [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]


def wait_until(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")


def stored(resume_file: Path) -> list[dict[str, Any]]:
    try:
        return list(json.loads(resume_file.read_text()).values())
    except (OSError, ValueError):
        return []


def random_file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def url_sha256(url: str) -> str:
    digest = hashlib.sha256()
    with requests.get(url, stream=True, timeout=120) as r:
        assert r.status_code == 200, (url, r.status_code, r.text[:200])
        for block in r.iter_content(MiB):
            digest.update(block)
    return digest.hexdigest()


def tus_offset(url: str) -> int:
    r = requests.head(url, headers={"Tus-Resumable": "1.0.0"}, timeout=10)
    return int(r.headers.get("Upload-Offset", -1)) if r.status_code == 200 else -1


def percent_sent(log: Path) -> float:
    """The newest percentage of the CLI's plain progress lines in ``log``."""
    found = re.findall(r" (\d+\.\d)% ", log.read_text(errors="replace"))
    return float(found[-1]) if found else 0.0
