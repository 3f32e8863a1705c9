"""Does instant upload reveal, by time, that another user holds some bytes?

    python -m bench.instant_leak --stores local,s3-moto --count 200

Per store: a fresh gateway taking JWTs; alice uploads 4 KiB; then bob
creates uploads (never instant: bob does not own alice's object), alternately
declaring the SHA-256 of alice's bytes and of fresh random bytes, ``--count``
of each. One JSON line per store: each kind's median and 90th percentile of
the creation's time, and the ratio of the medians (1 when the index answers
another owner's object exactly as no object).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt
import requests

from bench.envs import ENVS
from bench.gateway_proc import TUS_PATH, Gateway, gateway_config

TUS = {"Tus-Resumable": "1.0.0"}
_SECRET = "bench-instant-leak-secret-of-32-bytes"


def _token(sub: str) -> dict[str, str]:
    claims = {"exp": int(time.time() + 3600), "sub": sub, "policy": {"scope": "default"}}
    return {"Authorization": "Bearer " + jwt.encode(claims, _SECRET, algorithm="HS256")}


def _create(files: str, data: bytes, who: dict[str, str]) -> tuple[requests.Response, float]:
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    headers = {**TUS, **who, "Upload-Length": str(len(data)), "Repr-Digest": f"sha-256=:{digest}:"}
    start = time.perf_counter()
    r = requests.post(files, headers=headers, timeout=60)
    elapsed = time.perf_counter() - start
    if r.status_code != 201:
        raise RuntimeError(f"creation answered {r.status_code}: {r.text}")
    return r, elapsed


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(1000 * statistics.median(values), 2),
        "p90_ms": round(1000 * statistics.quantiles(values, n=10)[-1], 2),
    }


def run_store(name: str, count: int, workdir: Path) -> dict[str, Any]:
    env = ENVS[name](workdir / name)
    reason = env.skip_reason()
    if reason:
        return {"store": name, "skipped": reason}
    env.start()
    try:
        config = gateway_config(env.backend_config(), workdir / name, False)
        config["access"] = {"jwt": {"algorithms": ["HS256"], "secret": _SECRET}}
        with Gateway(config, workdir=workdir / name / "gw") as gateway:
            files = gateway.url + TUS_PATH
            alice, bob = _token("alice"), _token("bob")
            data = os.urandom(4096)
            first, _ = _create(files, data, alice)
            headers = {**TUS, **alice, "Upload-Offset": "0"}
            headers["Content-Type"] = "application/offset+octet-stream"
            requests.patch(first.headers["Location"], data=data, headers=headers, timeout=60)
            times: dict[str, list[float]] = {"theirs": [], "nobodys": []}
            for i in range(count):
                for kind in ("theirs", "nobodys") if i % 2 else ("nobodys", "theirs"):
                    body = data if kind == "theirs" else os.urandom(len(data))
                    r, elapsed = _create(files, body, bob)
                    if r.headers.get("Upload-Offset") != "0":
                        raise RuntimeError("bob's creation matched alice's object")
                    times[kind].append(elapsed)
        ratio = statistics.median(times["theirs"]) / statistics.median(times["nobodys"])
        return {
            "store": name,
            "count": count,
            "theirs": _ms(times["theirs"]),
            "nobodys": _ms(times["nobodys"]),
            "median_ratio": round(ratio, 3),
        }
    finally:
        env.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="local,s3-moto")
    parser.add_argument("--count", default=200, type=int)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-leak-") as tmp:
        for name in args.stores.split(","):
            print(json.dumps(run_store(name.strip(), args.count, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
