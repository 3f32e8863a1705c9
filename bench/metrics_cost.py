"""The CPU the metrics cost the gateway on the upload hot path.

    python -m bench.metrics_cost                    # 200 x 1 MiB tus uploads, 8 at a time, 5 rounds
    python -m bench.metrics_cost --reps 3 --count 200 --size 1M -c 8 [--access-log]

Each round runs the same load against two fresh gateways on the local disk
backend, one with ``metrics.enabled: false`` (no counting, no observed state
store or locks, no backend telemetry; request ids still on) and one with
metrics on, in alternating order, and reads each gateway process's CPU
seconds (user + system, ``bench/procstat.py``) over the load alone. The
access log is off in both unless ``--access-log`` (then it is on in both).
It prints one JSON line per run and the medians, with the cost as
``on / off - 1``. The target: under 3 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.gateway_proc import Gateway, gateway_config
from bench.procstat import Meter
from bench.sizes import parse_size

ROOT = Path(__file__).resolve().parents[1]


def _run(metrics: bool, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    config = gateway_config({"type": "local", "root": str(workdir / "data")}, workdir, False)
    config["metrics"] = {"enabled": metrics}
    gateway = Gateway(config, workdir=workdir)
    gateway.extra_args = ("--log-level", "warning") + (
        () if args.access_log else ("--no-access-log",)
    )
    with gateway:
        load = [
            sys.executable, "-m", "bench.load", "tus", "--url", f"{gateway.url}/files/",
            "--size", str(args.size), "--chunk", str(args.size), "--count", str(args.count),
            "-c", str(args.concurrency),
        ]  # fmt: skip
        with Meter(gateway.pid) as meter:
            done = subprocess.run(load, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"load failed: {done.stdout} {done.stderr}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
    assert meter.usage is not None
    if result.get("errors"):
        raise RuntimeError(f"uploads failed: {result.get('err_samples')}")
    return {
        "metrics": metrics,
        "gateway_cpu_s": round(meter.usage.cpu_s, 3),
        "wall_s": result["wall_s"],
        "uploads": result["ok"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.metrics_cost", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--size", type=parse_size, default=1 << 20)
    ap.add_argument("-c", "--concurrency", type=int, default=8)
    ap.add_argument("--access-log", action="store_true", help="access log on in both")
    args = ap.parse_args(argv)
    cpu: dict[bool, list[float]] = {False: [], True: []}
    for rep in range(args.reps):
        order = (False, True) if rep % 2 == 0 else (True, False)
        for metrics in order:
            with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
                run = _run(metrics, args, Path(tmp))
            print(json.dumps({"rep": rep, **run}), flush=True)
            cpu[metrics].append(run["gateway_cpu_s"])
    off, on = statistics.median(cpu[False]), statistics.median(cpu[True])
    summary = {
        "uploads": f"{args.count} x {args.size} B, {args.concurrency} at a time",
        "access_log": args.access_log,
        "gateway_cpu_s_median_off": off,
        "gateway_cpu_s_median_on": on,
        "metrics_cost_pct": round((on / off - 1) * 100, 2),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
