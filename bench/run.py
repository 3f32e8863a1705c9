"""Benchmark the gateway: one command starts the gateway and the stores it
needs, measures every scenario against the same store driven directly and
against the peer tus servers, and prints the tables (see bench/README.md).

    .venv/bin/python -m bench.run                  # everything available, 3 repetitions
    .venv/bin/python -m bench.run --quick          # one-minute smoke run (local disk, tiny sizes)
    .venv/bin/python -m bench.run --stores local,s3-moto --reps 5 --no-peers
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from bench import floor, peers, report
from bench.envs import ENVS, Env, LocalEnv
from bench.gateway_proc import (
    QINIU_AK,
    QINIU_SK,
    TUS_PATH,
    Gateway,
    gateway_config,
    qiniu_available,
)
from bench.procstat import Meter, cpu_seconds, machine_busy_seconds, wait_quiet
from bench.scenarios import FULL, QUICK, RSS_SIZES, RSS_SUSTAINED, Scenario
from bench.sizes import human

REPO = Path(__file__).resolve().parents[1]
GiB = 1 << 30


def client_result(argv: list[str], timeout: float) -> dict[str, Any]:
    """Run a load generator / baseline process; its last line is JSON."""
    r = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    lines = [x for x in r.stdout.splitlines() if x.startswith("{")]
    if not lines:
        raise RuntimeError(
            f"{shlex.join(argv[2:5])} failed (rc {r.returncode}): {r.stderr[-1500:]}"
        )
    out: dict[str, Any] = json.loads(lines[-1])
    return out


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _say(rec: dict[str, Any]) -> None:
    extra = ""
    if rec["what"] == "gateway":
        extra = (
            f"  gw CPU {report.f(rec['user_s'], 2)}+{report.f(rec['sys_s'], 2)} s "
            f"({report.f(rec['cpu_per_gib'], 2)} s/GiB, {report.f(rec['minflt_per_mib'], 0)} flt/MiB)"
            f"  peak RSS {report.f(rec['peak_rss_mib'], 0)} MiB"
        )
    print(
        f"  {rec['env']:9s} {rec['scenario']:22s} rep{rec['rep']} {rec['what']:8s} "
        f"{rec['mib_s']:8.1f} MiB/s  p50 {report.f(rec['p50_s'], 3)} p99 "
        f"{report.f(rec['p99_s'], 3)}  err {rec['errors']}{extra}",
        flush=True,
    )
    for e in rec.get("err_samples", [])[:2]:
        print(f"      ! {e}", flush=True)
    if rec["other_cpu_s"] > 0.2 * max(rec["wall_s"], 0.1):
        print(
            f"      (other processes used {rec['other_cpu_s']:.2f} CPU-s meanwhile: "
            "figures disturbed)",
            flush=True,
        )


def _top_functions(raw: Path, n: int = 15) -> str:
    """The functions most often on top of a busy stack, and most often on a
    stack at all, from py-spy's collapsed output (idle waits left out)."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    idle = ("select (selectors.py", "(concurrent/futures/thread.py:81)", "wait (threading.py")
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or any(i in frames[-1] for i in idle):
            continue
        k = int(count)
        total += k
        own[frames[-1]] = own.get(frames[-1], 0) + k
        for fr in set(frames):
            inclusive[fr] = inclusive.get(fr, 0) + k
    out = [f"      busy samples: {total}; self (top {n}):"]
    out += [
        f"      {v * 100 / total:5.1f}%  {k}"
        for k, v in sorted(own.items(), key=lambda x: -x[1])[:n]
    ]
    out.append(f"      inclusive (top {2 * n}):")
    out += [
        f"      {v * 100 / total:5.1f}%  {k}"
        for k, v in sorted(inclusive.items(), key=lambda x: -x[1])[: 2 * n]
    ]
    return "\n".join(out) + "\n"


class Bench:
    def __init__(self, a: argparse.Namespace, workdir: Path, outdir: Path) -> None:
        self.a = a
        self.workdir = workdir
        self.outdir = outdir
        self.records: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.qiniu = qiniu_available()
        self.overrides: dict[str, Any] = {}
        for item in a.set:
            key, _, value = item.partition("=")
            self.overrides[key] = yaml.safe_load(value)

    def settle(self) -> float:
        """Flush dirty pages, then wait for the machine to be quiet; its busy CPU/s."""
        os.sync()
        return wait_quiet(self.a.quiet_wait)

    @contextlib.contextmanager
    def profiled(self, pid: int, name: str) -> Iterator[None]:
        """With --profile: py-spy samples the gateway meanwhile; the collapsed
        stacks (flamegraph.pl / speedscope input) and the top functions are
        written under results/<time>/profiles/."""
        if not self.a.profile:
            yield
            return
        base = self.outdir / "profiles" / re.sub(r"[^\w.-]+", "_", name)
        base.parent.mkdir(exist_ok=True)
        raw = base.with_suffix(".collapsed.txt")
        spy = subprocess.Popen(
            [str(Path(sys.executable).with_name("py-spy")), "record", "--nonblocking", "-r", "200",
             "-f", "raw", "-p", str(pid), "-o", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.5)
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
            if raw.exists():
                top = _top_functions(raw)
                base.with_suffix(".top.txt").write_text(top)
                print(f"      profile: {raw}\n{top}", flush=True)

    def gateway_run(
        self, env: Env, sc: Scenario, rep: int, label: str | None = None
    ) -> dict[str, Any]:
        gw_dir = self.workdir / "gateway"
        shutil.rmtree(gw_dir, ignore_errors=True)
        backend = {**env.backend_config(), **self.overrides}
        config = gateway_config(backend, gw_dir, self.qiniu)
        log = self.outdir / "logs" / f"gateway-{env.name}.log"
        aux = env.aux_pids()
        with Gateway(config, gw_dir, log) as gw:
            busy_before = self.settle()
            aux0 = sum(cpu_seconds(p) for p in aux)
            m0, ch0, me0 = machine_busy_seconds(), _children_cpu(), _self_cpu()
            with self.profiled(gw.pid, f"{env.name}-{sc.name}-rep{rep}"), Meter(gw.pid) as meter:
                res = client_result(
                    [
                        sys.executable,
                        "-m",
                        "bench.load",
                        *sc.load_args(gw.base_url, TUS_PATH, QINIU_AK, QINIU_SK),
                    ],
                    self.a.timeout,
                )
            aux_cpu = sum(cpu_seconds(p) for p in aux) - aux0
            known = _children_cpu() - ch0 + _self_cpu() - me0 + aux_cpu
            other = machine_busy_seconds() - m0 - known
        env.clean()
        shutil.rmtree(gw_dir, ignore_errors=True)
        u = meter.usage
        assert u is not None
        gib = res["bytes_ok"] / GiB
        rec = {
            **res,
            "env": env.name,
            "scenario": label or sc.name,
            "rep": rep,
            "what": "gateway",
            "cpu_s": u.cpu_s,
            "user_s": u.user_s,
            "sys_s": u.sys_s,
            "minflt_per_mib": u.minflt / (res["bytes_ok"] / (1 << 20)) if gib else None,
            "cpu_per_gib": u.cpu_s / gib if gib else None,
            "peak_rss_mib": u.peak_rss_mib,
            "rss_before_mib": u.rss_before_mib,
            "aux_cpu_per_gib": aux_cpu / gib if gib and aux else None,
            "other_cpu_s": other - u.cpu_s,
            "busy_before": busy_before,
        }
        _say(rec)
        return rec

    def baseline_run(
        self, env: Env, sc: Scenario, rep: int, label: str, argv: list[str]
    ) -> dict[str, Any]:
        busy_before = self.settle()
        aux = env.aux_pids()
        aux0 = sum(cpu_seconds(p) for p in aux)
        m0, ch0 = machine_busy_seconds(), _children_cpu()
        res = client_result(argv, self.a.timeout)
        aux_cpu = sum(cpu_seconds(p) for p in aux) - aux0
        other = machine_busy_seconds() - m0 - (_children_cpu() - ch0) - aux_cpu
        env.clean()
        gib = res["bytes_ok"] / GiB
        rec = {
            **res,
            "env": env.name,
            "scenario": sc.name,
            "rep": rep,
            "what": "baseline",
            "label": label,
            "aux_cpu_per_gib": aux_cpu / gib if gib and aux else None,
            "other_cpu_s": other,
            "busy_before": busy_before,
        }
        _say(rec)
        return rec

    def run_env(self, env: Env, scenarios: list[Scenario]) -> None:
        print(f"[{env.name}] {env.description}", flush=True)
        try:
            env.start()
        except Exception as exc:
            self.notes.append(f"{env.name}: skipped, the store did not start: {exc}")
            print(f"  !! {self.notes[-1]}", flush=True)
            return
        try:
            for rep in range(self.a.reps):
                for sc in scenarios:
                    try:
                        for label, argv in env.baselines(sc):
                            self.records.append(self.baseline_run(env, sc, rep, label, argv))
                        self.records.append(self.gateway_run(env, sc, rep))
                    except Exception as exc:
                        self.notes.append(f"{env.name} {sc.name} rep{rep}: failed: {exc}")
                        print(f"  !! {self.notes[-1]}", flush=True)
        finally:
            env.stop()

    def rss_check(self) -> list[dict[str, Any]]:
        """Single uploads of growing size on a fresh gateway each: peak RSS must
        stay flat; so must it over SDK uploads one after another."""
        print("[rss] peak RSS against file size (local disk)", flush=True)
        env = LocalEnv(self.workdir)
        rows = []
        for size in RSS_SIZES:
            sc = Scenario("tus", size)
            rec = self.gateway_run(env, sc, 0, label=f"1 × {human(size)}")
            rows.append(rec)
        if self.qiniu:
            for sc in RSS_SUSTAINED:
                rows.append(self.gateway_run(env, sc, 0))
        return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: tiny sizes, 1 repetition, local disk, no peers, no RSS check; "
        "asserts nothing about timing",
    )
    ap.add_argument("--reps", type=int, help="repetitions (default 3; --quick: 1)")
    ap.add_argument(
        "--stores", help=f"comma list of {', '.join(ENVS)} (default: all; --quick: local)"
    )
    ap.add_argument("--scenarios", help="comma list of substrings of scenario names, e.g. 'tus,v2'")
    ap.add_argument("--no-peers", action="store_true", help="skip the peer tus servers")
    ap.add_argument(
        "--no-rss", action="store_true", help="skip the 64 MiB / 512 MiB / 2 GiB RSS check"
    )
    ap.add_argument(
        "--peers-dir",
        type=Path,
        default=peers.DEFAULT_DIR,
        help="private copy of the peers tool (made from /work/shared/peers if missing)",
    )
    ap.add_argument("--tmp", default=None, help="where temporary data goes (default: $TMPDIR)")
    ap.add_argument(
        "--out", type=Path, default=None, help="results folder (default bench/results/<time>)"
    )
    ap.add_argument("--record", action="store_true", help="append the report to bench/RESULTS.md")
    ap.add_argument("--timeout", type=int, default=900, help="per client run, seconds")
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="before each measurement wait up to this many seconds for other processes to "
        "go quiet (default 60; --quick 0)",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="profile the gateway with py-spy per measurement (figures disturbed; "
        ".venv/bin/pip install py-spy)",
    )
    ap.add_argument(
        "--no-floor",
        action="store_true",
        help="skip measuring the floor and the ceiling it sets (bench/floor.py)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the gateway's backend config (YAML value), e.g. fsync=false",
    )
    a = ap.parse_args(argv)
    a.reps = a.reps or (1 if a.quick else 3)
    if a.quiet_wait is None:
        a.quiet_wait = 0.0 if a.quick else 60.0
    stores = (a.stores or ("local" if a.quick else ",".join(ENVS))).split(",")
    if a.stores == "none":  # peers and the RSS check only
        stores = []
    unknown = [s for s in stores if s not in ENVS]
    if unknown:
        ap.error(f"unknown stores {unknown}; known: {list(ENVS)}")
    scenarios = QUICK if a.quick else FULL
    if a.scenarios:
        wanted = a.scenarios.split(",")
        scenarios = [s for s in scenarios if any(w in s.name for w in wanted)]
    with_peers = not (a.no_peers or a.quick)
    with_rss = not (a.no_rss or a.quick)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = (a.out or REPO / "bench" / "results" / stamp).resolve()
    (outdir / "logs").mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ugw-bench-", dir=a.tmp))
    bench = Bench(a, workdir, outdir)
    if not bench.qiniu:
        dropped = [s.name for s in scenarios if s.qiniu]
        scenarios = [s for s in scenarios if not s.qiniu]
        if dropped:
            bench.notes.append(
                f"Qiniu front-end not in this gateway yet: skipped {', '.join(dropped)}"
            )
            print(f"note: {bench.notes[-1]}", flush=True)
    info = report.machine()
    command = "python -m bench.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(f"{command}\n{json.dumps(info)}", flush=True)
    t0 = time.monotonic()
    rss_rows: list[dict[str, Any]] = []
    peer_rows: list[dict[str, Any]] = []
    models = {s.name: m for s in scenarios if (m := floor.model_of(s)) is not None}
    floors: dict[str, float] = {}
    try:
        if models and stores and not (a.no_floor or a.quick):
            bench.settle()
            floors = floor.floors()
            print(f"[floor] relay CPU s/GiB: {json.dumps(floors)}", flush=True)
        for name in stores:
            env = ENVS[name](workdir)
            reason = env.skip_reason()
            if reason:
                bench.notes.append(f"{name}: skipped: {reason}")
                print(f"[{name}] skipped: {reason}", flush=True)
                continue
            bench.run_env(env, scenarios)
        if with_rss:
            rss_rows = bench.rss_check()
        if with_peers:
            print(
                "[peers] tus-node-server 2.x, tuspyserver, aiohttp-min-disk (also with fsync) and the gateway "
                "(shared peers tool)",
                flush=True,
            )
            where = peers.prepare(a.peers_dir)
            if isinstance(where, str):
                bench.notes.append(f"peers: skipped: {where}")
            else:
                try:
                    data = peers.run(where, outdir / "peers", a.reps, a.timeout)
                    peer_rows = peers.summarize(data)
                except Exception as exc:
                    bench.notes.append(f"peers: failed: {exc}")
                    print(f"  !! {bench.notes[-1]}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows = report.summarize(bench.records)
    parts = [
        f"## {info['date']} — `{command}`",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM, kernel "
        f"{info['kernel']}, Python {info['python']}, commit {info['commit']}; "
        f"{a.reps} repetition(s), medians; {time.monotonic() - t0:.0f} s in all.",
        "",
        "### Gateway against the store driven directly",
        "",
        report.main_table(rows),
        "",
        "### Where the CPU goes (client, gateway, store; CPU-bound when the sum reaches CPUs × wall)",
        "",
        report.cpu_table(bench.records),
    ]
    if floors:
        parts += [
            "",
            "### The floor and the ceiling it sets (bench/floor.py)",
            "",
            "The least CPU a relay of 8 MiB parts spends here (its own process, 3 parts at a "
            "time, the hashes named):",
            "",
            report.floor_table(floors),
            "",
            "The best ratio against boto3 ×10 a gateway spending only the socket floor could "
            "reach in this run, with the client's and the store's CPU as measured: "
            "boto3 CPUs × wall ÷ (client + store × taken + floor); 4 MiB v2 parts: the store "
            "takes the odd parts twice, the gateway sends them twice and checks the even "
            "parts' MD5.",
            "",
            report.ceiling_table(bench.records, rows, floors, models),
        ]
    if peer_rows:
        parts += [
            "",
            "### Peer tus servers (local disk, one run of the shared peers tool)",
            "",
            report.peers_table(peer_rows, peers.PEERS),
        ]
    if rss_rows:
        parts += ["", "### Peak RSS against file size", "", report.rss_table(rss_rows)]
    if not a.quick:
        parts += ["", "### Targets (issues 7, 22)", "", report.checks(rows, peer_rows, rss_rows)]
    if bench.notes:
        parts += ["", "Notes:", "", *[f"* {n}" for n in bench.notes]]
    text = "\n".join(parts) + "\n"
    (outdir / "report.md").write_text(text)
    (outdir / "raw.json").write_text(
        json.dumps(
            {
                "machine": info,
                "command": command,
                "records": bench.records,
                "rss": rss_rows,
                "peers": peer_rows,
                "notes": bench.notes,
            },
            indent=1,
            default=str,
        )
    )
    print("\n" + text)
    print(f"(raw: {outdir}/raw.json, report: {outdir}/report.md)")
    if a.record:
        with open(REPO / "bench" / "RESULTS.md", "a") as fh:
            fh.write("\n" + text)
    errors = sum(r["errors"] for r in bench.records) + sum(r["errors"] for r in rss_rows)
    failed = any("failed" in n for n in bench.notes)
    return 1 if errors or failed else 0


if __name__ == "__main__":
    sys.exit(main())
