"""The same bytes written straight to the store, without the gateway.

    python -m bench.baselines disk  --dir D --size 512M [--count N -c K]
    python -m bench.baselines s3    --endpoint URL --bucket B --ak AK --sk SK --size 512M
    python -m bench.baselines swift --storage-url URL --token T --container C --size 512M
    python -m bench.baselines fastdfs --tracker HOST:PORT --size 512M

disk: each file written in ``--chunk`` writes from one random buffer, then
fsync'd (as the gateway does before acknowledging), up to ``-c`` files at a
time (at most 8 threads). s3: boto3's managed transfer, 8 MiB parts, 10
threads (``--threads``; a file below the part size is one PutObject), files
10 at a time.
swift: what python-swiftclient does for a large object: 8 MiB segments PUT
10 at a time into ``<container>_segments``, then an SLO manifest; a file
that fits in one segment is one PUT. fastdfs: the gateway's own FastDFS client
(no correct one exists on PyPI): one upload, or an appender file and 8 MiB
appends, files 10 at a time. Prints one JSON line like bench.load.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bench.load import Result, report
from bench.sizes import parse_size


class RepeatReader(io.RawIOBase):
    """A non-seekable stream of ``size`` bytes cut from one random block."""

    def __init__(self, block: bytes, size: int) -> None:
        self.block = memoryview(block)
        self.left = size
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self.left)
        done = 0
        while done < n:
            k = min(n - done, len(self.block) - self.pos)
            b[done : done + k] = self.block[self.pos : self.pos + k]
            done += k
            self.pos = (self.pos + k) % len(self.block)
        self.left -= n
        return n


def _run(count: int, threads: int, one: Callable[[int], None]) -> Result:
    res = Result()
    lock = threading.Lock()

    def timed(index: int) -> None:
        t0 = time.perf_counter()
        try:
            one(index)
        except Exception as exc:  # any failure of the store counts as an error
            with lock:
                res.error(f"{type(exc).__name__}: {exc}")
            return
        with lock:
            res.latencies.append(time.perf_counter() - t0)
            res.ok += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max(1, min(threads, count))) as pool:
        list(pool.map(timed, range(count)))
    res.wall_s = time.perf_counter() - t0
    return res


def disk(a: argparse.Namespace) -> Result:
    os.makedirs(a.dir, exist_ok=True)
    block = memoryview(os.urandom(min(a.chunk, a.size) or 1))
    paths = [os.path.join(a.dir, f"baseline-{uuid.uuid4().hex}") for _ in range(a.count)]

    def one(index: int) -> None:
        fd = os.open(paths[index], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            offset = 0
            while offset < a.size:
                offset += os.pwrite(fd, block[: min(len(block), a.size - offset)], offset)
            os.fsync(fd)
        finally:
            os.close(fd)

    try:
        return _run(a.count, min(a.concurrency, 8), one)
    finally:
        for p in paths:
            if os.path.exists(p):
                os.unlink(p)


def s3(a: argparse.Namespace) -> Result:
    from boto3.s3.transfer import TransferConfig

    from bench.envs import delete_keys, s3_client

    client = s3_client(
        a.endpoint, a.ak, a.sk, a.region, max_pool_connections=20, retries={"max_attempts": 1}
    )
    cfg = TransferConfig(
        multipart_threshold=a.part + 1,
        multipart_chunksize=a.part,
        max_concurrency=a.threads,
        use_threads=True,
    )
    block = os.urandom(min(a.part, a.size) or 1)
    keys = [f"baseline-{uuid.uuid4().hex}" for _ in range(a.count)]

    def one(index: int) -> None:
        client.upload_fileobj(RepeatReader(block, a.size), a.bucket, keys[index], Config=cfg)
        got = client.head_object(Bucket=a.bucket, Key=keys[index])["ContentLength"]
        if got != a.size:
            raise RuntimeError(f"head_object: {got} bytes, want {a.size}")

    try:
        return _run(a.count, min(a.concurrency, 10), one)
    finally:
        delete_keys(client, a.bucket, keys)


def swift(a: argparse.Namespace) -> Result:
    import requests

    block = os.urandom(min(a.part, a.size) or 1)
    local = threading.local()
    auth = {"X-Auth-Token": a.token}
    base = a.storage_url.rstrip("/")
    segments = f"{a.container}_segments"
    names = [f"baseline-{uuid.uuid4().hex}" for _ in range(a.count)]

    def session() -> requests.Session:
        if not hasattr(local, "s"):
            local.s = requests.Session()
            local.s.trust_env = False
        s: requests.Session = local.s
        return s

    def put(url: str, data: bytes, **headers: str) -> str:
        r = session().put(url, data=data, headers={**auth, **headers}, timeout=600)
        if r.status_code not in (201, 202):
            raise RuntimeError(f"PUT {url}: {r.status_code} {r.text[:200]}")
        return r.headers.get("Etag", "").strip('"')

    session().put(f"{base}/{segments}", headers=auth, timeout=60).raise_for_status()

    def one(index: int) -> None:
        name = names[index]
        if a.size <= a.part:
            put(f"{base}/{a.container}/{name}", block[: a.size])
            return
        sizes = [min(a.part, a.size - off) for off in range(0, a.size, a.part)]
        path = f"{segments}/{name}/"

        def segment(i: int) -> dict[str, object]:
            etag = put(f"{base}/{path}{i:08d}", block[: sizes[i]])
            return {"path": f"/{path}{i:08d}", "etag": etag, "size_bytes": sizes[i]}

        with ThreadPoolExecutor(10) as pool:
            manifest = list(pool.map(segment, range(len(sizes))))
        put(
            f"{base}/{a.container}/{name}?multipart-manifest=put",
            json.dumps(manifest).encode(),
            **{"Content-Type": "application/octet-stream"},
        )

    try:
        return _run(a.count, min(a.concurrency, 10), one)
    finally:
        for name in names:
            session().delete(
                f"{base}/{a.container}/{name}?multipart-manifest=delete", headers=auth, timeout=60
            )


def fastdfs(a: argparse.Namespace) -> Result:
    import asyncio

    from backends.fastdfs.client import FastDFSClient

    host, port = a.tracker.rsplit(":", 1)
    block = memoryview(os.urandom(min(a.part, a.size) or 1))
    ids: list[str] = []
    res = Result()

    async def one(client: FastDFSClient, sem: asyncio.Semaphore) -> None:
        async with sem:
            t0 = time.perf_counter()
            try:
                if a.size <= a.part:
                    ids.append(await client.upload(block[: a.size]))
                else:
                    file_id = await client.upload_appender(block)
                    ids.append(file_id)
                    for off in range(a.part, a.size, a.part):
                        await client.append(file_id, block[: min(a.part, a.size - off)])
            except Exception as exc:
                res.error(f"{type(exc).__name__}: {exc}")
                return
            res.latencies.append(time.perf_counter() - t0)
            res.ok += 1

    async def run() -> None:
        client = FastDFSClient([(host, int(port))], pool_size=16)
        sem = asyncio.Semaphore(min(a.concurrency, 10))
        try:
            t0 = time.perf_counter()
            await asyncio.gather(*(one(client, sem) for _ in range(a.count)))
            res.wall_s = time.perf_counter() - t0
            for file_id in ids:
                await client.delete(file_id)
        finally:
            await client.close()

    asyncio.run(run())
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench.baselines",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("store", choices=("disk", "s3", "swift", "fastdfs"))
    ap.add_argument("--size", type=parse_size, required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("-c", "--concurrency", type=int, default=1)
    ap.add_argument("--chunk", type=parse_size, default=8 << 20, help="disk: write size")
    ap.add_argument("--part", type=parse_size, default=8 << 20, help="s3 part / swift segment")
    ap.add_argument("--dir", help="disk: folder to write in")
    ap.add_argument("--endpoint")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--bucket")
    ap.add_argument("--ak")
    ap.add_argument("--sk")
    ap.add_argument("--storage-url")
    ap.add_argument("--token")
    ap.add_argument("--container")
    ap.add_argument("--tracker", help="fastdfs: host:port")
    ap.add_argument("--threads", type=int, default=10, help="s3: parts in flight per file")
    a = ap.parse_args(argv)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    res = {"disk": disk, "s3": s3, "swift": swift, "fastdfs": fastdfs}[a.store](a)
    return report(res, a.size, ru0)


if __name__ == "__main__":
    sys.exit(main())
