"""The CPU the whole-file SHA-256 costs the gateway, per GiB uploaded.

    python -m bench.digest_cost                   # 8 x 256 MiB tus uploads in 8 MiB PATCHes, 3 rounds
    python -m bench.digest_cost --reps 3 --count 8 --size 256M --chunk 8M -c 2

Each round runs the same load against two fresh gateways on the local disk
backend, one whose bucket has ``digest: off`` (nothing hashed) and one with
``digest: sha256`` (the default: every byte hashed as it passes, the state
saved with each PATCH's offset), in alternating order, and reads each
gateway process's CPU seconds (user + system, ``bench/procstat.py``) over
the load alone. It prints one JSON line per run and the medians as
CPU-s/GiB, with the digest's share. The target: at most 1.5 CPU-s/GiB with
the digest on.

``hash_only`` is SHA-256 alone over the same bytes in this process
(``rehashes``, as the gateway uses it, and ``hashlib`` for comparison): what
the digest should add at most.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.gateway_proc import gateway_config, tus_load_cpu
from bench.sizes import parse_size

GiB = 1 << 30


def _run(digest: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    config = gateway_config({"type": "local", "root": str(workdir / "data")}, workdir, False)
    config["buckets"]["default"]["digest"] = digest
    run = tus_load_cpu(
        config,
        workdir,
        size=args.size,
        chunk=args.chunk,
        count=args.count,
        concurrency=args.concurrency,
    )
    gib = args.size * args.count / GiB
    return {"digest": digest, **run, "cpu_s_per_gib": round(run["gateway_cpu_s"] / gib, 3)}


def hash_only(size: int = 256 << 20) -> dict[str, float]:
    """CPU-s/GiB of SHA-256 alone, fed 256 KiB at a time."""
    import hashlib

    import rehashes

    block = os.urandom(256 << 10)
    out = {}
    for name, make in (("rehashes", rehashes.PySha256), ("hashlib", hashlib.sha256)):
        h = make()
        start = time.process_time()
        for _ in range(size // len(block)):
            h.update(block)
        out[name] = round((time.process_time() - start) * GiB / size, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.digest_cost", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--size", type=parse_size, default=256 << 20)
    ap.add_argument("--chunk", type=parse_size, default=8 << 20, help="PATCH size")
    ap.add_argument("-c", "--concurrency", type=int, default=2)
    args = ap.parse_args(argv)
    per_gib: dict[str, list[float]] = {"off": [], "sha256": []}
    for rep in range(args.reps):
        order = ("off", "sha256") if rep % 2 == 0 else ("sha256", "off")
        for digest in order:
            with tempfile.TemporaryDirectory(prefix="bench-digest-") as tmp:
                run = _run(digest, args, Path(tmp))
            print(json.dumps({"rep": rep, **run}), flush=True)
            per_gib[digest].append(run["cpu_s_per_gib"])
    off, on = statistics.median(per_gib["off"]), statistics.median(per_gib["sha256"])
    summary = {
        "uploads": f"{args.count} x {args.size} B in {args.chunk} B PATCHes, "
        f"{args.concurrency} at a time, local disk",
        "cpu_s_per_gib_median_off": off,
        "cpu_s_per_gib_median_sha256": on,
        "digest_cpu_s_per_gib": round(on - off, 3),
        "target_met": on <= 1.5,
        "hash_only_cpu_s_per_gib": hash_only(),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
