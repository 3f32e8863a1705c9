"""What Qiniu ``mkfile`` costs for a large file: the time of the ``mkfile``
request alone, its 4 MiB blocks already uploaded (raw ``mkblk``, three in
flight as the Python SDK sends them); and, for comparison, v2 ``complete``
over 4 MiB parts. On S3 the blocks are below the 5 MiB minimum part size, so
``mkfile`` is a bounded copy-through inside the gateway; v2 parts go the same
way; on local disk both are ``copy_file_range`` into one file.

    .venv/bin/python -m bench.qiniu_mkfile [--envs local,s3-moto] [--size-mib 256] [--repeat 3]

One fresh gateway per store (``bench/envs.py``); prints, per store, the
median and minimum over ``--repeat`` runs, and checks each answer's ``hash``
against the qetag of the bytes sent.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import qiniu
import requests

from bench.envs import Env, LocalEnv, MotoEnv
from bench.gateway_proc import QINIU_AK, QINIU_SK, Gateway, gateway_config

MiB = 1 << 20
BLOCK = 4 * MiB
ENVS: dict[str, Callable[[Path], Env]] = {"local": LocalEnv, "s3-moto": MotoEnv}
NO_PROXY = {"http": "", "https": ""}


def _block(run: int, index: int, size: int) -> bytes:
    """Distinct, reproducible, cheap content."""
    seed = hashlib.sha256(f"{run}-{index}".encode()).digest()
    return (seed * (size // 32 + 1))[:size]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _qetag(sha1s: list[bytes]) -> str:
    if len(sha1s) == 1:
        return base64.urlsafe_b64encode(b"\x16" + sha1s[0]).decode()
    return base64.urlsafe_b64encode(b"\x96" + hashlib.sha1(b"".join(sha1s)).digest()).decode()


class Runner:
    def __init__(self, gw: Gateway, size: int) -> None:
        self.gw = gw
        self.size = size
        self.sizes = [min(BLOCK, size - i) for i in range(0, size, BLOCK)]
        token = qiniu.Auth(QINIU_AK, QINIU_SK).upload_token("default", None, 7200)
        self.headers = {"Authorization": f"UpToken {token}"}
        self.http = requests.Session()

    def _post(self, path: str, **kwargs: object) -> requests.Response:
        r = self.http.post(
            f"{self.gw.base_url}{path}",
            headers=self.headers,
            proxies=NO_PROXY,
            timeout=900,
            **kwargs,  # type: ignore[arg-type]
        )
        if r.status_code != 200:
            raise RuntimeError(f"POST {path} answered {r.status_code}: {r.text[:300]}")
        return r

    def v1(self, run: int) -> tuple[float, float]:
        """(seconds for the blocks, seconds for mkfile)."""

        def mkblk(i: int) -> str:
            data = _block(run, i, self.sizes[i])
            return str(self._post(f"/mkblk/{len(data)}", data=data).json()["ctx"])

        started = time.perf_counter()
        with ThreadPoolExecutor(3) as pool:
            ctxs = list(pool.map(mkblk, range(len(self.sizes))))
        blocks = time.perf_counter()
        key = _b64(f"bench/mkfile-{run}.bin")
        answer = self._post(f"/mkfile/{self.size}/key/{key}", data=",".join(ctxs)).json()
        done = time.perf_counter()
        self._check(answer, run)
        return blocks - started, done - blocks

    def v2(self, run: int) -> tuple[float, float]:
        """(seconds for the parts, seconds for complete)."""
        base = f"/buckets/default/objects/{_b64(f'bench/complete-{run}.bin')}/uploads"
        upload_id = self._post(base).json()["uploadId"]

        def put(i: int) -> dict[str, object]:
            data = _block(run, i, self.sizes[i])
            r = self.http.put(
                f"{self.gw.base_url}{base}/{upload_id}/{i + 1}",
                data=data,
                headers=self.headers,
                proxies=NO_PROXY,
                timeout=900,
            )
            if r.status_code != 200:
                raise RuntimeError(f"part {i + 1} answered {r.status_code}: {r.text[:300]}")
            return {"partNumber": i + 1, "etag": r.json()["etag"]}

        started = time.perf_counter()
        with ThreadPoolExecutor(3) as pool:
            parts = list(pool.map(put, range(len(self.sizes))))
        uploaded = time.perf_counter()
        answer = self._post(f"{base}/{upload_id}", json={"parts": parts}).json()
        done = time.perf_counter()
        self._check(answer, run)
        return uploaded - started, done - uploaded

    def _check(self, answer: dict[str, str], run: int) -> None:
        sha1s = [hashlib.sha1(_block(run, i, n)).digest() for i, n in enumerate(self.sizes)]
        if answer.get("hash") != _qetag(sha1s):
            raise RuntimeError(f"wrong hash {answer.get('hash')!r}")


def _empty_store(env: Env) -> None:
    """Drop the objects of the last run (keeping the gateway's directories)."""
    if isinstance(env, LocalEnv):
        objects = env.root / "objects"
        shutil.rmtree(objects, ignore_errors=True)
        objects.mkdir(parents=True, exist_ok=True)
    else:
        env.clean()


def _summary(label: str, values: list[float]) -> str:
    return f"{label} median {statistics.median(values):.2f}s (min {min(values):.2f}s)"


def measure(env: Env, size: int, repeat: int, with_v2: bool) -> str:
    env.start()
    try:
        config = gateway_config(env.backend_config(), env.workdir, qiniu=True)
        with Gateway(config, env.workdir / "gw", env.workdir / "gateway.log") as gw:
            runner = Runner(gw, size)
            mkfile, blocks, complete, parts = [], [], [], []
            for run in range(repeat):
                up, cost = runner.v1(run)
                blocks.append(up)
                mkfile.append(cost)
                _empty_store(env)
                if with_v2:
                    up, cost = runner.v2(run)
                    parts.append(up)
                    complete.append(cost)
                    _empty_store(env)
    finally:
        env.stop()
    line = f"[{env.name}] {size // MiB} MiB, {len(runner.sizes)} blocks: "
    line += _summary("mkfile", mkfile) + "; " + _summary("blocks", blocks)
    if with_v2:
        line += " | v2 " + _summary("complete", complete) + "; " + _summary("parts", parts)
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", default="local,s3-moto", help=f"of {','.join(ENVS)}")
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-v2", action="store_true", help="skip v2 complete")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-mkfile-"))
    try:
        for name in args.envs.split(","):
            env = ENVS[name](workdir)
            reason = env.skip_reason()
            if reason:
                print(f"[{name}] skipped: {reason}")
                continue
            print(measure(env, args.size_mib * MiB, args.repeat, not args.no_v2), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
