"""Issue 3's benchmark: a tus upload through the gateway into S3, against
boto3 uploading the same bytes straight to the same server in the same run.

    .venv/bin/python -m bench.s3_tus                       # 512 MiB, moto and Swift s3api
    .venv/bin/python -m bench.s3_tus --size 128MiB --stores moto --reps 3

For each store (moto server; Swift all-in-one with s3api, both on loopback,
started here), alternated ``--reps`` times, each after the machine has
been quiet for a moment:

* ``direct``: boto3's managed multipart upload (8 MiB parts, 10 threads,
  default client settings) — the issue's reference;
* ``gateway``: one tus upload in 8 MiB PATCHes (POST, then PATCHes over one
  keep-alive connection; the last PATCH returns once the object is complete);
* for context, ``direct-1``: the same boto3 upload with 1 thread (what one
  part at a time costs the store), and ``gateway-1patch``: the whole file in
  one PATCH (tus-js-client's default), where the gateway uploads parts
  concurrently.

Every object is checked (size, part count) and deleted. Prints MiB/s
(medians), gateway / direct (the issue's target is ≥ 0.9), the gateway's
CPU seconds for the PATCH upload and its peak RSS.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from bench.gateway_proc import TUS_PATH, Gateway, gateway_config
from bench.procstat import cpu_seconds, reset_peak, status_mib, wait_quiet
from bench.sizes import human, parse_size
from tests.servers.moto import MotoServer
from tests.servers.swift import SwiftServer

MiB = 1024 * 1024
PART = 8 * MiB
BUCKET = "bench-s3-tus"
QUIET_WAIT = 30.0  # seconds to wait for other load to pass before each run


def tus_upload(port: int, data: bytes, chunk: int) -> str:
    """Upload ``data`` with tus in ``chunk``-sized PATCHes; return the upload id."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    tus = {"Tus-Resumable": "1.0.0"}
    conn.request("POST", TUS_PATH, headers={**tus, "Upload-Length": str(len(data))})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 201:
        raise RuntimeError(f"POST answered {resp.status}")
    path = urlsplit(resp.headers["Location"]).path
    view = memoryview(data)
    for offset in range(0, len(data), chunk):
        body = view[offset : offset + chunk]
        headers = {
            **tus,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(len(body)),
        }
        conn.request("PATCH", path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read()
        if resp.status != 204:
            raise RuntimeError(f"PATCH at {offset} answered {resp.status}: {text[:200]!r}")
    conn.close()
    return path.rsplit("/", 1)[1]


def s3_client(endpoint: str, ak: str, sk: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=16),
    )


def direct_upload(s3: Any, key: str, data: bytes, threads: int) -> None:
    config = TransferConfig(
        multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=threads
    )
    s3.upload_fileobj(io.BytesIO(data), BUCKET, key, Config=config)


def check_and_delete(s3: Any, key: str, size: int, part: int) -> None:
    """The object has the right size and part count; then it goes."""
    head = s3.head_object(Bucket=BUCKET, Key=key)
    parts = str(head["ETag"]).strip('"').rpartition("-")[2]
    expected = str(-(-size // part))
    if head["ContentLength"] != size or parts != expected:
        raise RuntimeError(f"{key}: {head['ContentLength']} bytes in {parts} parts")
    s3.delete_object(Bucket=BUCKET, Key=key)


class Runs:
    """Timed runs of one store, by variant."""

    def __init__(self, s3: Any, data: bytes, gateway: Gateway) -> None:
        self.s3, self.data, self.gateway = s3, data, gateway
        self.seconds: dict[str, list[float]] = {}
        self.cpu: list[float] = []
        self.peaks: dict[str, list[float]] = {}

    def run(self, variant: str) -> float:
        busy = wait_quiet(QUIET_WAIT)
        size = len(self.data)
        reset_peak(self.gateway.pid)
        t0 = time.perf_counter()
        cpu0 = cpu_seconds(self.gateway.pid)
        if variant.startswith("direct"):
            key = f"{variant}-{len(self.seconds.get(variant, []))}"
            direct_upload(self.s3, key, self.data, 1 if variant == "direct-1" else 10)
        else:
            chunk = size if variant == "gateway-1patch" else PART
            key = tus_upload(self.gateway.port, self.data, chunk)
        seconds = time.perf_counter() - t0
        note = ""
        if variant.startswith("gateway"):
            cpu = cpu_seconds(self.gateway.pid) - cpu0
            peak = status_mib(self.gateway.pid).get("VmHWM", 0.0)
            self.peaks.setdefault(variant, []).append(peak)
            note = f", gateway CPU {cpu:.2f} s, peak RSS {peak:.0f} MiB"
            if variant == "gateway":
                self.cpu.append(cpu)
        check_and_delete(self.s3, key, size, PART)
        self.seconds.setdefault(variant, []).append(seconds)
        print(
            f"    {variant:<15} {size / MiB / seconds:7.1f} MiB/s  (machine busy {busy:.2f}{note})",
            flush=True,
        )
        return seconds

    def rate(self, variant: str) -> float:
        return len(self.data) / MiB / statistics.median(self.seconds[variant])


VARIANTS = ("direct", "gateway", "direct-1", "gateway-1patch")


def bench_store(name: str, server: Any, endpoint: str, data: bytes, reps: int) -> dict[str, Any]:
    ak, sk = server.access_key, server.secret_key
    s3 = s3_client(endpoint, ak, sk)
    s3.create_bucket(Bucket=BUCKET)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-s3-tus-{name}-"))
    backend = {
        "type": "s3",
        "endpoint_url": endpoint,
        "bucket": BUCKET,
        "access_key": ak,
        "secret_key": sk,
        "addressing_style": "path",
        "max_parts": 1000,
    }
    log = workdir / "gateway.log"
    try:
        with Gateway(gateway_config(backend, workdir, False), workdir, log) as gw:
            runs = Runs(s3, data, gw)
            for rep in range(reps):
                print(f"  {name} round {rep + 1}/{reps}", flush=True)
                for variant in VARIANTS:
                    runs.run(variant)
    except BaseException:
        print(f"  the gateway's log: {log}", file=sys.stderr)
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    row: dict[str, Any] = {"store": name, **{v: runs.rate(v) for v in VARIANTS}}
    row["ratio"] = row["gateway"] / row["direct"]
    row["gateway_cpu"] = statistics.median(runs.cpu)
    row["peak_rss"] = max(max(v) for v in runs.peaks.values())
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", default="512MiB")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--stores", default="moto,swift")
    args = ap.parse_args(argv)
    size = parse_size(args.size)
    data = os.urandom(size)
    print(f"{human(size)} tus upload in 8 MiB PATCHes vs boto3 multipart 8 MiB × 10 threads")
    rows = []
    for name in args.stores.split(","):
        if name == "moto":
            with MotoServer() as moto:
                rows.append(bench_store("moto", moto, moto.endpoint_url, data, args.reps))
        elif name == "swift":
            with SwiftServer() as swift:
                rows.append(bench_store("swift-s3api", swift, swift.s3_endpoint, data, args.reps))
        else:
            ap.error(f"unknown store {name!r} (moto, swift)")
    print(f"\nMiB/s, median of {args.reps}; ratio = gateway / direct (target ≥ 0.9)")
    head = "".join(f"{v:>16}" for v in VARIANTS)
    print(f"{'store':<12}{head}{'ratio':>8}{'gw CPU s':>10}{'gw RSS MiB':>12}")
    for r in rows:
        cells = "".join(f"{r[v]:>16.1f}" for v in VARIANTS)
        print(
            f"{r['store']:<12}{cells}{r['ratio']:>8.2f}{r['gateway_cpu']:>10.2f}"
            f"{r['peak_rss']:>12.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
