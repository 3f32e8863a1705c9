"""What access control costs an upload, as ratios measured in one run.

    python -m bench.access_cost                 # both pairs, 3 rounds
    python -m bench.access_cost --reps 5 --pairs token

Two A/B pairs, each round running the same load against two fresh gateways
in alternating order, reading each gateway process's CPU seconds (and the
store's) over the load alone (``bench/loaded.py``):

* ``token`` (local disk, 200 x 1 MiB tus uploads, 8 at a time, one PATCH
  each): anonymous uploads vs every request carrying ``Authorization:
  UpToken`` (the token verified, the upload's owner checked on each request).
* ``hook`` (S3 on moto, 100 x 1 MiB and 16 x 16 MiB, 4 at a time): no hook vs
  a pre-finish hook that approves at once (a test server in this process):
  under a hook an upload is written to a temporary key and copied to its
  key when approved, where without one it is written on its key.

Besides, ``micro`` times the state read admission made per tus request
before it rode on the core's own read (``state.get`` on SQLite, in this
process) as a share of the gateway CPU per upload of the anonymous runs.
Prints one JSON line per run and a summary with medians and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.envs import MotoEnv
from bench.gateway_proc import QINIU_AK, QINIU_SK, Gateway, gateway_config
from bench.loaded import measured
from testservers.ports import free_port

MiB = 1 << 20


@contextmanager
def approving_hook() -> Iterator[str]:
    """A pre-finish hook endpoint that approves every call at once."""
    loop = asyncio.new_event_loop()
    port = free_port()
    ready = threading.Event()
    runner: web.AppRunner | None = None

    async def approve(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    def serve() -> None:
        nonlocal runner
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_post("/hook", approve)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _load(gateway: Gateway, size: int, count: int, concurrency: int, *extra: str) -> list[str]:
    return [
        "tus", "--url", f"{gateway.url}/files/", "--size", str(size), "--chunk", str(size),
        "--count", str(count), "-c", str(concurrency), "--ak", QINIU_AK, "--sk", QINIU_SK,
        *extra,
    ]  # fmt: skip


def token_run(token: bool, workdir: Path, count: int) -> dict[str, Any]:
    config = gateway_config({"type": "local", "root": str(workdir / "data")}, workdir, True)
    # the bucket stays open (the warm-up uploads anonymously); a token sent is verified
    # and makes its uploads answer only requests carrying it
    with Gateway(config, workdir=workdir) as gateway:
        load = _load(gateway, MiB, count, 8, *(["--uptoken"] if token else []))
        return {"pair": "token", "variant": "uptoken" if token else "anonymous",
                **measured(gateway.pid, load)}  # fmt: skip


def hook_run(
    hook: str | None, env: MotoEnv, workdir: Path, size: int, count: int
) -> dict[str, Any]:
    config = gateway_config(env.backend_config(), workdir, False)
    if hook is not None:
        config["hooks"] = [{"url": hook, "events": ["pre-finish"], "secret": "bench-secret"}]
    try:
        with Gateway(config, workdir=workdir) as gateway:
            load = _load(gateway, size, count, 4)
            figures = measured(gateway.pid, load, env.aux_pids())
    finally:
        env.clean()
    return {"pair": "hook", "variant": "pre-finish hook" if hook else "no hook",
            "uploads_of": size, **figures}  # fmt: skip


def micro(workdir: Path) -> float:
    """Microseconds of CPU one ``state.get`` of an upload's record costs (SQLite)."""
    from gateway.core.records import Kind, UploadRecord
    from gateway.core.state.sqlite import SQLiteStateStore

    async def reads() -> float:
        store = SQLiteStateStore(str(workdir / "micro.db"))
        await store.open()
        now = time.time()
        record = UploadRecord(
            id="u" * 32, protocol="tus", kind=Kind.UPLOAD, bucket="default", key="k",
            length=MiB, created_at=now, updated_at=now,
            extra={"access": {"scope": "default", "endUser": "someone"}},
        )  # fmt: skip
        await store.create(record)
        n = 5000
        start = time.process_time()
        for _ in range(n):
            await store.get(record.id)
        spent = (time.process_time() - start) / n * 1e6
        await store.close()
        return spent

    return asyncio.run(reads())


def _median(runs: list[dict[str, Any]], variant: str, key: str, **match: Any) -> float:
    values = [
        r[key]
        for r in runs
        if r["variant"] == variant and all(r.get(k) == v for k, v in match.items())
    ]
    return float(statistics.median(values))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.access_cost", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--count", type=int, default=200, help="uploads of the token pair")
    ap.add_argument("--pairs", default="token,hook", help="token, hook or both")
    args = ap.parse_args(argv)
    pairs = set(args.pairs.split(","))
    runs: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-access-") as tmp:
        root = Path(tmp)
        if "token" in pairs:
            for rep in range(args.reps):
                for token in (False, True) if rep % 2 == 0 else (True, False):
                    workdir = root / f"token-{rep}-{token}"
                    run = {"rep": rep, **token_run(token, workdir, args.count)}
                    print(json.dumps(run), flush=True)
                    runs.append(run)
            off = _median(runs, "anonymous", "gateway_cpu_s")
            on = _median(runs, "uptoken", "gateway_cpu_s")
            read_us = micro(root)
            summary["token"] = {
                "uploads": f"{args.count} x 1 MiB tus, 8 at a time, local disk",
                "gateway_cpu_s_anonymous": off,
                "gateway_cpu_s_uptoken": on,
                "uptoken_over_anonymous_cpu": round(on / off, 3),
                "wall_uptoken_over_anonymous": round(
                    _median(runs, "uptoken", "wall_s") / _median(runs, "anonymous", "wall_s"), 3
                ),
                "state_read_us": round(read_us, 1),
                # a PATCH and a HEAD per upload each read the record once more
                "two_reads_pct_of_cpu_per_upload": round(
                    2 * read_us / (off / args.count * 1e6) * 100, 2
                ),
            }
        if "hook" in pairs:
            env = MotoEnv(root)
            env.start()
            try:
                with approving_hook() as hook_url:
                    for size, count in ((MiB, 100), (16 * MiB, 16)):
                        for rep in range(args.reps):
                            order = (None, hook_url) if rep % 2 == 0 else (hook_url, None)
                            for hook in order:
                                workdir = root / f"hook-{size}-{rep}-{hook is not None}"
                                run = {"rep": rep, **hook_run(hook, env, workdir, size, count)}
                                print(json.dumps(run), flush=True)
                                runs.append(run)
            finally:
                env.stop()
            for size, count in ((MiB, 100), (16 * MiB, 16)):
                figures = {}
                for key in ("gateway_cpu_s", "store_cpu_s", "wall_s"):
                    plain = _median(runs, "no hook", key, uploads_of=size)
                    hooked = _median(runs, "pre-finish hook", key, uploads_of=size)
                    figures[f"{key}_no_hook"] = plain
                    figures[f"{key}_hook"] = hooked
                    figures[f"{key}_hook_over_no_hook"] = round(hooked / plain, 3)
                summary[f"hook {count} x {size // MiB} MiB"] = figures
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
