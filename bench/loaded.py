"""One ``bench.load`` run against a gateway that is up, with the CPU seconds
the gateway process (and the store's processes, if named) spent meanwhile —
what the A/B cost benches (``metrics_cost``, ``access_cost``) compare."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.procstat import Meter, cpu_seconds

ROOT = Path(__file__).resolve().parents[1]


def measured(gateway_pid: int, load: list[str], store_pids: Sequence[int] = ()) -> dict[str, Any]:
    """``python -m bench.load LOAD...``; raises if the load failed or any upload did."""
    store_before = sum(cpu_seconds(pid) for pid in store_pids)
    with Meter(gateway_pid) as meter:
        done = subprocess.run(
            [sys.executable, "-m", "bench.load", *load],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    store_cpu = sum(cpu_seconds(pid) for pid in store_pids) - store_before
    if done.returncode != 0:
        raise RuntimeError(f"load failed: {done.stdout} {done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert meter.usage is not None
    if result.get("errors"):
        raise RuntimeError(f"uploads failed: {result.get('err_samples')}")
    figures = {
        "gateway_cpu_s": round(meter.usage.cpu_s, 3),
        "wall_s": result["wall_s"],
        "uploads": result["ok"],
    }
    if store_pids:
        figures["store_cpu_s"] = round(store_cpu, 3)
    return figures
