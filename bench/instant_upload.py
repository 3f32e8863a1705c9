"""The time of an instant upload (秒传) against the time of sending the bytes.

    python -m bench.instant_upload --stores local,s3-moto --size 1G [--reps 3]

Per store: a fresh gateway; one ordinary tus upload of ``--size`` random
bytes declaring its SHA-256 (one PATCH, timed), then ``--reps`` creations
of the same bytes declaring the same digest, each timed from the POST to
its ``201`` (no byte sent: the store copies the object), and the copy read
back once and compared by SHA-256. Then the upload CLI (``python -m gateway
upload``, a process of its own) on the same file, timed from its start to
its end: it hashes the file, creates, and is answered complete; the hashing
alone is timed too (the CLI's own ``LocalFile.sha256``, in this process), and
the CLI's start-up (``upload --help``: the interpreter and its imports).
One JSON line per store with the gateway's CPU seconds over the instant
creations (``bench/procstat.py``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.envs import ENVS
from bench.gateway_proc import TUS_PATH, Gateway, gateway_config
from bench.procstat import Meter
from bench.sizes import parse_size
from gateway.client.files import expand

TUS = {"Tus-Resumable": "1.0.0"}
_BLOCK = 8 * 1024 * 1024


def _random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes; their ``Repr-Digest``."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(_BLOCK, left))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return f"sha-256=:{base64.b64encode(digest.digest()).decode()}:"


def _create(files: str, size: int, repr_digest: str) -> tuple[requests.Response, float]:
    headers = {**TUS, "Upload-Length": str(size), "Repr-Digest": repr_digest}
    start = time.perf_counter()
    r = requests.post(files, headers=headers, timeout=3600)
    elapsed = time.perf_counter() - start
    if r.status_code != 201:
        raise RuntimeError(f"creation answered {r.status_code}: {r.text}")
    return r, elapsed


def _sha256_of(url: str) -> str:
    digest = hashlib.sha256()
    with requests.get(url, stream=True, timeout=3600) as r:
        r.raise_for_status()
        for chunk in r.iter_content(_BLOCK):
            digest.update(chunk)
    return f"sha-256=:{base64.b64encode(digest.digest()).decode()}:"


def _cli(base_url: str, source: Path, workdir: Path) -> tuple[dict[str, Any], float]:
    """The upload CLI on ``source``: its JSON record and its wall time."""
    command = [sys.executable, "-m", "gateway", "upload", str(source), "--endpoint", base_url]
    command += ["--json", "--resume-file", str(workdir / "resume.json")]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=3600)
    elapsed = time.perf_counter() - start
    record: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return record, elapsed


def _startup_s() -> float:
    """The CLI process doing nothing: ``upload --help``."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "gateway", "upload", "--help"]
    subprocess.run(command, capture_output=True, check=True, timeout=600)
    return time.perf_counter() - start


def _hash_s(source: Path) -> float:
    """The CLI's hashing of ``source`` alone."""
    start = time.perf_counter()
    [file] = expand([str(source)])
    file.sha256()
    return time.perf_counter() - start


def run_store(name: str, size: int, reps: int, workdir: Path) -> dict[str, Any]:
    env = ENVS[name](workdir / name)
    reason = env.skip_reason()
    if reason:
        return {"store": name, "skipped": reason}
    env.start()
    try:
        source = workdir / "source.bin"
        repr_digest = _random_file(source, size)
        config = gateway_config(env.backend_config(), workdir / name, False)
        with Gateway(config, workdir=workdir / name / "gw") as gateway:
            files = gateway.url + TUS_PATH
            first, _ = _create(files, size, repr_digest)
            headers = {**TUS, "Upload-Offset": "0"}
            headers["Content-Type"] = "application/offset+octet-stream"
            start = time.perf_counter()
            with open(source, "rb") as body:
                r = requests.patch(first.headers["Location"], data=body, headers=headers)
            sent_s = time.perf_counter() - start
            if r.status_code != 204:
                raise RuntimeError(f"PATCH answered {r.status_code}: {r.text}")
            times: list[float] = []
            with Meter(gateway.pid) as meter:
                for _ in range(reps):
                    answer, elapsed = _create(files, size, repr_digest)
                    if answer.headers.get("Upload-Offset") != str(size):
                        raise RuntimeError("not an instant upload: is the digest indexed?")
                    times.append(elapsed)
            assert meter.usage is not None
            same = _sha256_of(answer.headers["X-Object-Url"]) == repr_digest
            cli, cli_s = _cli(gateway.url, source, workdir / name)
            if not cli.get("instant"):
                raise RuntimeError(f"the CLI's upload was not instant: {cli}")
            hash_s = _hash_s(source)
            startup_s = _startup_s()
        return {
            "store": name,
            "size": size,
            "sent_s": round(sent_s, 2),
            "instant_s": [round(t, 3) for t in times],
            "instant_median_s": round(statistics.median(times), 3),
            "gateway_cpu_s_per_instant": round(meter.usage.cpu_s / reps, 3),
            "copy_identical": same,
            "cli_s": round(cli_s, 2),
            "cli_hash_s": round(hash_s, 2),
            "cli_startup_s": round(startup_s, 2),
        }
    finally:
        env.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="local,s3-moto")
    parser.add_argument("--size", default="1G", type=parse_size)
    parser.add_argument("--reps", default=3, type=int)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-instant-") as tmp:
        for name in args.stores.split(","):
            print(json.dumps(run_store(name.strip(), args.size, args.reps, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
