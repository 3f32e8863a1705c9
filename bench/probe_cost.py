"""What the S3 backend's start-up probe (``backends/s3/probe.py``) costs per
store: how long start-up waits for its findings, when its clean-up is done,
and how many requests it made (in three round trips after each other, and
the clean-up's).

    .venv/bin/python -m bench.probe_cost --stores s3-moto,s3-swift,s3-swift230,s3-ceph --reps 8

Each store is started (``bench.envs``), its bucket created, and the store's
first multipart upload made before timing (Ceph RGW creates a pool on the
first one in a new cluster: ~2 s, once per cluster, not per probe). Then the
probe runs ``--reps`` times on that bucket, as at every gateway start.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from backends.s3.config import S3Config
from backends.s3.probe import probe
from backends.s3.store import Store
from bench.envs import ENVS


class Timeline:
    """Start and end of every S3 request of the clients a session creates."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []

    def watch(self, events: Any) -> None:
        def before(context: dict[str, Any], **_: Any) -> None:
            context["bench_start"] = time.perf_counter()

        def after(context: dict[str, Any], **_: Any) -> None:
            self.spans.append((context.get("bench_start", 0.0), time.perf_counter()))

        events.register("before-call.s3", before)
        events.register("after-call.s3", after)
        events.register("after-call-error.s3", after)


async def _measure(config: S3Config, reps: int) -> list[tuple[float, float, int]]:
    main = Store(config)
    await main.open()
    results = []
    try:
        await main.check_bucket(create=True)
        first = await main.create_multipart(f"{config.temp_prefix}bench-first", None, None)
        await main.abort(f"{config.temp_prefix}bench-first", first)
        # clients created from the session from now on: the probe's own
        timeline = Timeline()
        timeline.watch(main.session)
        for _ in range(reps):
            timeline.spans.clear()
            started = time.perf_counter()
            probed = await probe(main, config, "bench")
            found = time.perf_counter()
            await probed.cleaned
            cleaned = time.perf_counter()
            results.append((found - started, cleaned - started, len(timeline.spans)))
    finally:
        await main.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="s3-moto,s3-swift,s3-swift230,s3-ceph")
    parser.add_argument("--reps", type=int, default=8)
    args = parser.parse_args()
    print("| store | until findings, median (min–max) | until cleaned up | requests |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="probe-cost-") as tmp:
        for name in args.stores.split(","):
            env = ENVS[name](Path(tmp))
            if reason := env.skip_reason():
                print(f"| {name} | skipped: {reason} | | |")
                continue
            env.start()
            try:
                config = S3Config.model_validate(env.backend_config())
                rows = asyncio.run(_measure(config, args.reps))
            finally:
                env.stop()
            found = [r[0] * 1000 for r in rows]
            cleaned = [r[1] * 1000 for r in rows]
            print(
                f"| {name} | {statistics.median(found):.0f} ms "
                f"({min(found):.0f}–{max(found):.0f}) | {statistics.median(cleaned):.0f} ms | "
                f"{rows[-1][2]} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
