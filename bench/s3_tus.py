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
CPU seconds per GiB for the PATCH upload and its peak RSS, and the store's
CPU seconds per GiB (all its processes) when fed directly and through the
gateway — a gateway that makes the store work harder shows there.

The gateway runs with its default ``multipart_checksum: auto`` (CRC32 where
the store takes it; ``--multipart-checksum none`` to compare): boto3 declares CRC32 on its
uploads too, and without an algorithm moto computes a full-object checksum
at completion, re-reading and copying every byte (seconds for 512 MiB).
``--option KEY=VALUE`` sets any other S3 option of the gateway (e.g.
``preopen_parts=0``). Each gateway run also prints its PATCHes' median
latency (all but the last, which completes the upload).
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

import yaml
from boto3.s3.transfer import TransferConfig

from bench.envs import s3_client
from bench.gateway_proc import TUS_PATH, Gateway, gateway_config
from bench.procstat import cpu_seconds, reset_peak, status_mib, wait_quiet
from bench.sizes import human, parse_size
from testservers.moto import MotoServer
from testservers.swift import SwiftServer

MiB = 1024 * 1024
PART = 8 * MiB
BUCKET = "bench-s3-tus"
QUIET_WAIT = 30.0  # seconds to wait for other load to pass before each run


def tus_upload(port: int, data: bytes, chunk: int, latencies: list[float] | None = None) -> str:
    """Upload ``data`` with tus in ``chunk``-sized PATCHes; return the upload
    id (and each PATCH's seconds in ``latencies``)."""
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
        t0 = time.perf_counter()
        conn.request("PATCH", path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read()
        if latencies is not None:
            latencies.append(time.perf_counter() - t0)
        if resp.status != 204:
            raise RuntimeError(f"PATCH at {offset} answered {resp.status}: {text[:200]!r}")
    conn.close()
    return path.rsplit("/", 1)[1]


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


def _own_cpu() -> float:
    """This process's CPU seconds (the client's, for either variant)."""
    t = os.times()
    return t.user + t.system


class Runs:
    """Timed runs of one store, by variant."""

    def __init__(self, s3: Any, data: bytes, gateway: Gateway, server_pids: list[int]) -> None:
        self.s3, self.data, self.gateway = s3, data, gateway
        self.server_pids = server_pids
        self.seconds: dict[str, list[float]] = {}
        #: the store's CPU seconds per GiB, by variant
        self.server_cpu: dict[str, list[float]] = {}
        self.cpu: list[float] = []
        self.peaks: dict[str, list[float]] = {}

    def run(self, variant: str) -> float:
        busy = wait_quiet(QUIET_WAIT)
        size = len(self.data)
        reset_peak(self.gateway.pid)
        t0 = time.perf_counter()
        cpu0 = cpu_seconds(self.gateway.pid)
        server0 = self._server_cpu()
        own0 = _own_cpu()
        latencies: list[float] = []
        if variant.startswith("direct"):
            key = f"{variant}-{len(self.seconds.get(variant, []))}"
            direct_upload(self.s3, key, self.data, 1 if variant == "direct-1" else 10)
        else:
            chunk = size if variant == "gateway-1patch" else PART
            key = tus_upload(self.gateway.port, self.data, chunk, latencies)
        seconds = time.perf_counter() - t0
        gib = size / (1 << 30)
        server = (self._server_cpu() - server0) / gib
        own = (_own_cpu() - own0) / gib
        self.server_cpu.setdefault(variant, []).append(server)
        note = f", store CPU {server:.2f} s/GiB, client CPU {own:.2f} s/GiB"
        if variant.startswith("gateway"):
            cpu = cpu_seconds(self.gateway.pid) - cpu0
            peak = status_mib(self.gateway.pid).get("VmHWM", 0.0)
            self.peaks.setdefault(variant, []).append(peak)
            note += f", gateway CPU {cpu / gib:.2f} s/GiB, peak RSS {peak:.0f} MiB"
            if len(latencies) > 1:  # the last PATCH also completes the upload
                ms = statistics.median(latencies[:-1]) * 1000
                note += f", PATCH median {ms:.1f} ms, last {latencies[-1] * 1000:.0f} ms"
            if variant == "gateway":
                self.cpu.append(cpu / gib)
        check_and_delete(self.s3, key, size, PART)
        self.seconds.setdefault(variant, []).append(seconds)
        print(
            f"    {variant:<15} {size / MiB / seconds:7.1f} MiB/s  (machine busy {busy:.2f}{note})",
            flush=True,
        )
        return seconds

    def _server_cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.server_pids)

    def rate(self, variant: str) -> float:
        return len(self.data) / MiB / statistics.median(self.seconds[variant])


VARIANTS = ("direct", "gateway", "direct-1", "gateway-1patch")


def bench_store(
    name: str,
    server: Any,
    endpoint: str,
    data: bytes,
    reps: int,
    variants: tuple[str, ...],
    checksum: str,
    options: dict[str, Any],
) -> dict[str, Any]:
    ak, sk = server.access_key, server.secret_key
    s3 = s3_client(endpoint, ak, sk, max_pool_connections=16)
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
    if checksum != "default":
        backend["multipart_checksum"] = checksum
    backend.update(options)
    log = workdir / "gateway.log"
    try:
        with Gateway(gateway_config(backend, workdir, False), workdir, log) as gw:
            runs = Runs(s3, data, gw, server.pids)
            for rep in range(reps):
                print(f"  {name} round {rep + 1}/{reps}", flush=True)
                for variant in variants:
                    runs.run(variant)
    except BaseException:
        print(f"  the gateway's log: {log}", file=sys.stderr)
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    row: dict[str, Any] = {"store": name, **{v: runs.rate(v) for v in variants}}
    row["ratio"] = row["gateway"] / row["direct"]
    row["gateway_cpu"] = statistics.median(runs.cpu)
    row["peak_rss"] = max(max(v) for v in runs.peaks.values())
    for v in ("direct", "gateway"):
        row[f"store_cpu_{v}"] = statistics.median(runs.server_cpu[v])
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", default="512MiB")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--stores", default="moto,swift")
    ap.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="a subset of " + ", ".join(VARIANTS) + " (direct and gateway are always run)",
    )
    ap.add_argument(
        "--multipart-checksum",
        default="default",
        choices=["default", "CRC32", "none"],
        help="the gateway's multipart_checksum (CRC32: moto completes without re-reading)",
    )
    ap.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an S3 backend option for the gateway (YAML value), e.g. preopen_parts=0",
    )
    args = ap.parse_args(argv)
    options = {k: yaml.safe_load(v) for k, _, v in (o.partition("=") for o in args.option)}
    chosen = set(args.variants.split(",")) | {"direct", "gateway"}
    if chosen - set(VARIANTS):
        ap.error(f"unknown variants: {', '.join(sorted(chosen - set(VARIANTS)))}")
    variants = tuple(v for v in VARIANTS if v in chosen)
    size = parse_size(args.size)
    data = os.urandom(size)
    print(f"{human(size)} tus upload in 8 MiB PATCHes vs boto3 multipart 8 MiB × 10 threads")
    rows = []
    for name in args.stores.split(","):
        if name == "moto":
            with MotoServer() as moto:
                rows.append(
                    bench_store(
                        "moto",
                        moto,
                        moto.endpoint_url,
                        data,
                        args.reps,
                        variants,
                        args.multipart_checksum,
                        options,
                    )
                )
        elif name == "swift":
            with SwiftServer() as swift:
                rows.append(
                    bench_store(
                        "swift-s3api",
                        swift,
                        swift.s3_endpoint,
                        data,
                        args.reps,
                        variants,
                        args.multipart_checksum,
                        options,
                    )
                )
        else:
            ap.error(f"unknown store {name!r} (moto, swift)")
    print(f"\nMiB/s, median of {args.reps}; ratio = gateway / direct (target ≥ 0.9)")
    print("CPU in s/GiB: the gateway's, and the store's fed directly / through the gateway")
    head = "".join(f"{v:>16}" for v in variants)
    print(
        f"{'store':<12}{head}{'ratio':>8}{'gw CPU':>8}{'gw RSS MiB':>12}{'store CPU direct/gw':>21}"
    )
    for r in rows:
        cells = "".join(f"{r[v]:>16.1f}" for v in variants)
        print(
            f"{r['store']:<12}{cells}{r['ratio']:>8.2f}{r['gateway_cpu']:>8.2f}"
            f"{r['peak_rss']:>12.0f}{r['store_cpu_direct']:>13.2f} / {r['store_cpu_gateway']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
