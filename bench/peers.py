"""The peer tus servers, measured with the gateway in one run of the shared
peers tool (``shared/peers/run_all.sh`` beside the checkout: ``../shared/peers``,
or ``$UGW_PEERS_SRC``), which is run, never copied.

The tool writes a venv, node_modules and results next to itself, so it runs
from a private copy (``--peers-dir``, default ``~/.cache/upload-gateway-bench/
peers``, made once with ``cp -r`` and reused: its first run installs the
pinned peers from PyPI and npm). The gateway joins as an ``--add`` target on
the local disk backend, started by the tool like the peers.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

CHECKOUT = Path(__file__).resolve().parents[1]


def _shared_tool() -> Path:
    """``$UGW_PEERS_SRC``, else ``shared/peers`` beside the checkout (or beside
    the directory holding it, for a git worktree one level further down)."""
    if "UGW_PEERS_SRC" in os.environ:
        return Path(os.environ["UGW_PEERS_SRC"])
    beside = [d / "shared" / "peers" for d in (CHECKOUT.parent, CHECKOUT.parent.parent)]
    return next((d for d in beside if d.is_dir()), beside[0])


SHARED = _shared_tool()
DEFAULT_DIR = Path.home() / ".cache" / "upload-gateway-bench" / "peers"
GW = "gw"
#: the tool's names; tus-node-file = @tus/server 2.x + @tus/file-store
TOOL_PEERS = ["tus-node-file", "tuspyserver", "aiohttp-min-disk"]
#: references added to the tool's run: its own minimal aiohttp server, made
#: as durable as the gateway (fsync of each finished upload)
ADDED = {
    "aiohttp-min-disk-fsync": "{py} {root}/bench/sink.py --port {port} --dir {dir} --fsync",
}
PEERS = [*TOOL_PEERS, *ADDED]
SCENARIOS = {
    "single-512M": "tus 1x512M",
    "64x8M-c64": "tus 64x8M c64",
    "200x1M-c32": "tus 200x1M c32",
}


def prepare(peers_dir: Path) -> Path | str:
    """The runnable copy, or why there is none."""
    if not (peers_dir / "run_all.sh").exists():
        if not (SHARED / "run_all.sh").exists():
            return f"peers tool not found at {SHARED}"
        peers_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(SHARED, peers_dir)
        for root, dirs, files in os.walk(peers_dir):
            for n in dirs + files:
                p = Path(root, n)
                p.chmod(p.stat().st_mode | 0o200)
        peers_dir.chmod(peers_dir.stat().st_mode | 0o200)
    return peers_dir


def run(peers_dir: Path, outdir: Path, reps: int, timeout: int) -> dict[str, Any]:
    """Run the tool; return its raw.json (``records`` of every target and rep)."""
    outdir.mkdir(parents=True, exist_ok=True)
    state = outdir / "gw-state"
    state.mkdir(exist_ok=True)
    cfg = outdir / "gw-config.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "backends": {"default": {"type": "local", "root": "${GW_ROOT}"}},
                "state": {"type": "sqlite", "path": "${GW_STATE}"},
                "tus": {"path": "/files/"},
                "uploads": {"sweep_interval": 3600},
            }
        )
    )
    # {dir} is emptied by the tool between repetitions: the state db lives elsewhere
    add = (
        f"{GW}::env GW_ROOT={{dir}} GW_STATE={state}/state-{{port}}.db "
        f"{sys.executable} -m gateway serve -c {cfg} --log-level warning --port {{port}}::/files"
    )
    cmd = [
        str(peers_dir / "run_all.sh"),
        "--no-s3",
        "--no-quirks",
        "--reps",
        str(reps),
        "--timeout",
        str(timeout),
        "--targets",
        ",".join(TOOL_PEERS),
        "--add",
        add,
        *[arg for name, line in ADDED.items() for arg in ("--add", f"{name}::{line}::/files")],
        "--out",
        str(outdir),
    ]
    print("  $", " ".join(cmd[:-2]), "--out", outdir, flush=True)
    with open(outdir / "console.log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    raw = outdir / "raw.json"
    if not raw.exists():
        raise RuntimeError(f"peers tool failed (rc {proc.returncode}); see {outdir}/console.log")
    data: dict[str, Any] = json.loads(raw.read_text())
    if not any(r.get("target") == GW and r.get("scenario") in SCENARIOS for r in data["records"]):
        raise RuntimeError(f"the gateway failed in the peers run; see {outdir}/console.log")
    shutil.rmtree(peers_dir / "data", ignore_errors=True)
    return data


def _med(values: list[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def summarize(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (target, scenario): medians, and the gateway's ratios to each peer
    (median over repetitions of gateway ÷ peer in the same repetition)."""
    recs = [r for r in data["records"] if r.get("scenario") in SCENARIOS]
    by: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for r in recs:
        by.setdefault((r["target"], r["scenario"]), {})[r["rep"]] = r
    rows = []
    for (target, sc), reps in by.items():
        rs = list(reps.values())
        srv = [r.get("server") or {} for r in rs]
        gib = [(r.get("bytes_ok") or 0) / (1 << 30) for r in rs]
        row: dict[str, Any] = {
            "target": target,
            "scenario": SCENARIOS[sc],
            "reps": len(rs),
            "mib_s": _med([r.get("mib_s") for r in rs]),
            "p50_s": _med([r.get("p50_s") for r in rs]),
            "p99_s": _med([r.get("p99_s") for r in rs]),
            "cpu_per_gib": _med(
                [
                    s["cpu_s"] / g if s.get("cpu_s") is not None and g else None
                    for s, g in zip(srv, gib, strict=True)
                ]
            ),
            "peak_rss_mib": _med([s.get("peak_rss_mib") for s in srv]),
            "errors": sum((r.get("errors") or 0) + (r.get("head_fail") or 0) for r in rs),
        }
        gw = by.get((GW, sc), {})
        for peer in PEERS:
            pr = by.get((peer, sc), {})
            if target == GW and pr:
                row[f"ratio_{peer}"] = _med(
                    [
                        gw[i]["mib_s"] / pr[i]["mib_s"]
                        for i in gw
                        if i in pr and pr[i].get("mib_s") and gw[i].get("mib_s")
                    ]
                )
        rows.append(row)
    order = {n: i for i, n in enumerate([GW, *PEERS])}
    rows.sort(
        key=lambda r: (list(SCENARIOS.values()).index(r["scenario"]), order.get(r["target"], 99))
    )
    return rows
