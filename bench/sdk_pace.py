"""The pace of the official Qiniu SDK's v2 upload through the thinnest
server there can be: how close to boto3 writing the same bytes any gateway
could come with this client, on this machine, against this store.

The *bare relay* speaks just enough of Qiniu v2 for the Python SDK (init,
upload part, complete; no token check, no state, no hash) and streams each
part's body, as it arrives, into an UploadPart of the object's S3 multipart
upload (SigV4, ``UNSIGNED-PAYLOAD``; a part must be at least the store's
minimum, so ``--part-size`` ≥ 5 MiB); complete is one
CompleteMultipartUpload. In each repetition boto3's managed transfer
(``bench.baselines s3``: 8 MiB parts, 10 threads) writes the same size, then
the SDK (``bench.load qiniu-sdk``, its defaults: three parts at a time)
uploads it through the relay. Their ratio bounds what any gateway reaches
with this SDK here: a gateway does at least what the relay does.
``bench.run`` measures it beside boto3 in its v2 scenarios whose parts are
at least 5 MiB (``once``: the SDK through a relay started for it).

    .venv/bin/python -m bench.sdk_pace --stores s3-moto,s3-swift --reps 5
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.envs import MotoEnv, SwiftS3Env, s3_client
from bench.run import client_result
from bench.sizes import human, parse_size
from testservers.ports import LOOPBACK, free_port, wait_for_http

MiB = 1 << 20
_ENVS = {"s3-moto": MotoEnv, "s3-swift": SwiftS3Env}


# -- the relay (its own process) ----------------------------------------------------
def _relay(port: int, endpoint: str, bucket: str, ak: str, sk: str) -> None:
    from aiohttp import ClientSession, TCPConnector, web
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    s3 = s3_client(endpoint, ak, sk)
    credentials = Credentials(ak, sk)
    session_key = web.AppKey("session", ClientSession)

    def key_of(request: web.Request) -> str:
        encoded = request.match_info["key"]
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()

    def object_url(key: str) -> str:
        return f"{endpoint}/{bucket}/{quote(key, safe='/')}"

    async def init(request: web.Request) -> web.Response:
        up = await asyncio.to_thread(s3.create_multipart_upload, Bucket=bucket, Key=key_of(request))
        return web.json_response({"uploadId": up["UploadId"], "expireAt": int(time.time()) + 3600})

    async def part(request: web.Request) -> web.Response:
        url = f"{object_url(key_of(request))}?partNumber={request.match_info['n']}" + (
            f"&uploadId={quote(request.match_info['upload'])}"
        )
        length = str(request.content_length or 0)
        signed = AWSRequest(
            "PUT",
            url,
            headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Content-Length": length},
        )
        SigV4Auth(credentials, "s3", "us-east-1").add_auth(signed)

        async def body() -> Any:
            while chunk := await request.content.readany():
                yield chunk

        async with request.app[session_key].put(
            url, data=body(), headers=dict(signed.headers.items())
        ) as resp:
            answer = await resp.read()
            if resp.status != 200:
                return web.json_response({"error": answer.decode(errors="replace")}, status=502)
            return web.json_response({"etag": resp.headers["ETag"].strip('"')})

    async def complete(request: web.Request) -> web.Response:
        listed = json.loads(await request.read())["parts"]
        key = key_of(request)
        parts = [{"PartNumber": p["partNumber"], "ETag": p["etag"]} for p in listed]
        await asyncio.to_thread(
            s3.complete_multipart_upload,
            Bucket=bucket,
            Key=key,
            UploadId=request.match_info["upload"],
            MultipartUpload={"Parts": parts},
        )
        return web.json_response({"key": key, "hash": "-"})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def serve() -> None:
        app = web.Application(client_max_size=1 << 30)
        app[session_key] = ClientSession(connector=TCPConnector(limit=0))
        base = "/buckets/{bucket}/objects/{key}/uploads"
        app.router.add_get("/healthz", healthz)
        app.router.add_post(base, init)
        app.router.add_put(base + "/{upload}/{n}", part)
        app.router.add_post(base + "/{upload}", complete)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, LOOPBACK, port).start()
        await asyncio.Event().wait()

    asyncio.run(serve())


# -- the measurement ----------------------------------------------------------------
def _run(argv: list[str]) -> dict[str, Any]:
    result = client_result([sys.executable, *argv], timeout=600)
    if result["errors"]:
        raise RuntimeError(f"{argv[:2]}: {result['err_samples']}")
    return result


class _Relay:
    """The relay in a process of its own, for as long as the ``with``."""

    def __init__(self, endpoint: str, bucket: str, ak: str, sk: str) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._argv = [sys.executable, "-m", "bench.sdk_pace", "relay", "--port", str(self.port),
                      "--endpoint", endpoint, "--bucket", bucket, "--ak", ak, "--sk", sk]  # fmt: skip

    def __enter__(self) -> _Relay:
        self._proc = subprocess.Popen(self._argv)
        wait_for_http(self.url + "/healthz", timeout=60, procs=[self._proc])
        return self

    def __exit__(self, *_: object) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=30)


def _sdk_argv(url: str, bucket: str, part_size: int, sizes: list[str]) -> list[str]:
    # the relay checks no token: the SDK's need not be signed with the store's
    # keys (a Swift s3api key holds a ":", which a Qiniu token cannot)
    return ["-m", "bench.load", "qiniu-sdk", "--url", url, "--ak", "relay", "--sk", "relay",
            "--bucket", bucket, "--version", "v2", "--part-size", str(part_size),
            *sizes]  # fmt: skip


def measure(store: str, size: int, part_size: int, reps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sdk-pace-") as tmp:
        env = _ENVS[store](Path(tmp))
        reason = env.skip_reason()
        if reason:
            return {"store": store, "skipped": reason}
        env.start()
        try:
            endpoint, ak, sk = env._endpoint()
            sizes = ["--size", str(size), "--count", "1", "-c", "1"]
            baseline = ["-m", "bench.baselines", "s3", "--endpoint", endpoint,
                        "--bucket", env.bucket, "--ak", ak, "--sk", sk, *sizes]  # fmt: skip
            boto, relayed = [], []
            with _Relay(endpoint, env.bucket, ak, sk) as relay:
                sdk = _sdk_argv(relay.url, env.bucket, part_size, sizes)
                for _ in range(reps):
                    boto.append(_run(baseline)["mib_s"])
                    relayed.append(_run(sdk)["mib_s"])
                    env.clean()
            return {"store": store, "boto3": boto, "sdk": relayed}
        finally:
            env.stop()


def once(a: argparse.Namespace) -> int:
    """The SDK through a relay started for it: its ``bench.load`` line (a
    baseline of ``bench.run``'s v2 scenarios)."""
    sizes = ["--size", str(a.size), "--count", str(a.count), "-c", "1"]
    with _Relay(a.endpoint, a.bucket, a.ak, a.sk) as relay:
        argv = _sdk_argv(relay.url, a.bucket, a.part_size, sizes)
        done = subprocess.run([sys.executable, *argv], check=False, timeout=600)
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.sdk_pace", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command")
    r = sub.add_parser("relay")
    r.add_argument("--port", type=int, required=True)
    o = sub.add_parser("once")
    o.add_argument("--size", type=parse_size, required=True)
    o.add_argument("--count", type=int, default=1)
    o.add_argument("-c", type=int, default=1, help="ignored: the SDK sends one file at a time")
    o.add_argument("--part-size", type=parse_size, required=True)
    for p in (r, o):
        for name in ("--endpoint", "--bucket", "--ak", "--sk"):
            p.add_argument(name, required=True)
    ap.add_argument("--stores", default="s3-moto,s3-swift")
    ap.add_argument("--size", type=parse_size, default=64 * MiB)
    ap.add_argument("--part-size", type=parse_size, default=8 * MiB)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args(argv)
    if a.command == "relay":
        _relay(a.port, a.endpoint, a.bucket, a.ak, a.sk)
        return 0
    if a.command == "once":
        return once(a)
    if a.part_size < 5 * MiB:
        ap.error("the relay streams each part into an S3 part: --part-size ≥ 5 MiB")
    print(f"| store | SDK v2 {human(a.size)} p{human(a.part_size)} via the bare relay MiB/s "
          "| boto3 8M×10 MiB/s | ratio (median of pairs) |")  # fmt: skip
    print("|---|---|---|---|")
    for store in a.stores.split(","):
        got = measure(store, a.size, a.part_size, a.reps)
        if "skipped" in got:
            print(f"| {store} | skipped: {got['skipped']} | | |")
            continue
        ratios = [s / b for s, b in zip(got["sdk"], got["boto3"], strict=True)]
        print(
            f"| {store} | {statistics.median(got['sdk']):.1f} "
            f"({min(got['sdk']):.0f}–{max(got['sdk']):.0f}) "
            f"| {statistics.median(got['boto3']):.1f} "
            f"({min(got['boto3']):.0f}–{max(got['boto3']):.0f}) "
            f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
