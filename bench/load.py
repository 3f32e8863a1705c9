"""Load generators; each prints one JSON line (see ``Result``).

    python -m bench.load tus --url http://127.0.0.1:P/files/ --size 512M --chunk 8M
    python -m bench.load ietf --url http://127.0.0.1:P/files/ --size 1M --count 200 -c 32
    python -m bench.load qiniu-form --url http://127.0.0.1:P --size 1M --count 200 -c 32 \
        --ak AK --sk SK --bucket default
    python -m bench.load qiniu-sdk --url http://127.0.0.1:P --size 64M --version v2 \
        --ak AK --sk SK --bucket default

tus: POST, PATCHes of ``--chunk`` bytes (each checked: 204 and the new
Upload-Offset), then a HEAD that must report the full offset. ietf: the same
over the IETF resumable-upload protocol (interop 8): a creation without
content, ``application/partial-upload`` appends (the last with
``Upload-Complete: ?1``), a HEAD that must say complete. A PATCH body is
one random buffer handed to aiohttp as 1 MiB memoryview slices with an
explicit Content-Length (no copy of the body per request). Latency of an
upload = POST start to HEAD end. qiniu-form: multipart ``POST /`` with token,
key and file. qiniu-sdk: the official SDK's ``put_file`` (v1 blocks or v2
parts, 4 MiB) from a file in a temporary folder, uploads one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field

import aiohttp
from yarl import URL

from bench.sizes import parse_size

_SLICE = 1 << 20


@dataclass
class Result:
    ok: int = 0
    errors: int = 0
    err_samples: list[str] = field(default_factory=list)
    bytes_ok: int = 0
    wall_s: float = 0.0
    mib_s: float = 0.0
    p50_s: float | None = None
    p99_s: float | None = None
    client_cpu_s: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def error(self, msg: str) -> None:
        self.errors += 1
        if len(self.err_samples) < 5:
            self.err_samples.append(msg[:300])


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def report(res: Result, size: int, ru0: resource.struct_rusage) -> int:
    """Complete ``res`` (client CPU since ``ru0``, throughput, percentiles),
    print it as one JSON line and return the process exit status."""
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    res.client_cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    res.bytes_ok = res.ok * size
    res.mib_s = res.bytes_ok / res.wall_s / (1 << 20) if res.wall_s > 0 else 0.0
    res.p50_s, res.p99_s = percentile(res.latencies, 50), percentile(res.latencies, 99)
    out = asdict(res)
    del out["latencies"]
    print(json.dumps(out), flush=True)
    return 0 if res.errors == 0 else 1


class Failed(Exception):
    pass


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


async def _slices(buf: memoryview) -> AsyncIterator[memoryview]:
    for i in range(0, len(buf), _SLICE):
        yield buf[i : i + _SLICE]


_OFFSET_TYPE = "application/offset+octet-stream"


async def _create(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> str:
    async with session.post(url, headers=headers) as r:  # aiohttp skips an IETF 104
        body = await r.read()
        if r.status != 201 or "Location" not in r.headers:
            raise Failed(f"POST {r.status} {body[:200]!r}")
        return str(r.url.join(URL(r.headers["Location"])))


async def _append_all(
    session: aiohttp.ClientSession,
    location: str,
    size: int,
    chunk: int,
    buf: memoryview,
    headers_of: Callable[[int, bool], dict[str, str]],
    status_of: Callable[[bool], int],
) -> None:
    """PATCHes of ``chunk`` bytes, each checked: its status (``status_of(last)``)
    and the new Upload-Offset."""
    offset = 0
    while offset < size:
        n = min(chunk, size - offset)
        last = offset + n == size
        headers = {**headers_of(offset, last), "Content-Length": str(n)}
        data = buf[:n]
        payload = _slices(data) if n > _SLICE else data
        async with session.patch(location, data=payload, headers=headers) as r:
            body = await r.read()
            got = r.headers.get("Upload-Offset")
            if r.status != status_of(last) or got is None or int(got) != offset + n:
                raise Failed(f"PATCH@{offset} {r.status} offset={got} {body[:200]!r}")
        offset += n


async def _check_head(
    session: aiohttp.ClientSession,
    location: str,
    headers: dict[str, str],
    status: int,
    size: int,
    complete: dict[str, str],
) -> None:
    async with session.head(location, headers=headers) as r:
        got = r.headers.get("Upload-Offset")
        if r.status != status or got is None or int(got) != size:
            raise Failed(f"HEAD {r.status} Upload-Offset={got}, want {size}")
        for name, value in complete.items():
            if r.headers.get(name) != value:
                raise Failed(f"HEAD: {name} is {r.headers.get(name)!r}, want {value}")


async def _tus_one(
    session: aiohttp.ClientSession, url: str, size: int, chunk: int, buf: memoryview, name: str
) -> None:
    tus = {"Tus-Resumable": "1.0.0"}
    metadata = f"filename {_b64(name)},filetype {_b64('application/octet-stream')}"
    location = await _create(
        session, url, {**tus, "Upload-Length": str(size), "Upload-Metadata": metadata}
    )

    def patch(offset: int, last: bool) -> dict[str, str]:
        return {**tus, "Upload-Offset": str(offset), "Content-Type": _OFFSET_TYPE}

    await _append_all(session, location, size, chunk, buf, patch, lambda last: 204)
    await _check_head(session, location, tus, 200, size, {})


async def _ietf_one(
    session: aiohttp.ClientSession, url: str, size: int, chunk: int, buf: memoryview, name: str
) -> None:
    interop = {"Upload-Draft-Interop-Version": "8"}
    location = await _create(
        session,
        url,
        {
            **interop,
            "Upload-Complete": "?0",
            "Upload-Length": str(size),
            "Content-Disposition": f'inline; filename="{name}"',
        },
    )

    fixed = {**interop, "Content-Type": "application/partial-upload"}

    def append(offset: int, last: bool) -> dict[str, str]:
        complete = "?1" if last else "?0"
        return {**fixed, "Upload-Offset": str(offset), "Upload-Complete": complete}

    await _append_all(
        session, location, size, chunk, buf, append, lambda last: 200 if last else 204
    )
    await _check_head(session, location, interop, 204, size, {"Upload-Complete": "?1"})


def _form_token(ak: str, sk: str, bucket: str) -> str:
    import qiniu

    return str(qiniu.Auth(ak, sk).upload_token(bucket, None, 7200))


async def _form_one(
    session: aiohttp.ClientSession, url: str, token: str, data: bytes, name: str
) -> None:
    form = aiohttp.FormData()
    form.add_field("token", token)
    form.add_field("key", name)
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    async with session.post(url.rstrip("/") + "/", data=form) as r:
        body = await r.read()
        if r.status != 200:
            raise Failed(f"form POST {r.status} {body[:200]!r}")
        if json.loads(body).get("key") != name:
            raise Failed(f"form POST answered {body[:200]!r}")


async def _run_async(
    count: int,
    concurrency: int,
    one: Callable[[aiohttp.ClientSession, int], Awaitable[None]],
    headers: dict[str, str] | None = None,
) -> Result:
    res = Result()
    next_index = 0
    conn = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=600)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            t0 = time.perf_counter()
            try:
                await one(session, index)
            except (Failed, aiohttp.ClientError, OSError, TimeoutError) as exc:
                res.error(f"{type(exc).__name__}: {exc}")
            else:
                res.latencies.append(time.perf_counter() - t0)
                res.ok += 1

    async with aiohttp.ClientSession(
        connector=conn, timeout=timeout, skip_auto_headers=("User-Agent",), headers=headers
    ) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(min(concurrency, count))))
        res.wall_s = time.perf_counter() - t0
    return res


def _sdk_run(a: argparse.Namespace) -> Result:
    import qiniu
    from qiniu import Region

    res = Result()
    auth = qiniu.Auth(a.ak, a.sk)
    region = Region(up_host=a.url, up_host_backup=a.url, scheme="http")
    with tempfile.TemporaryDirectory(prefix="bench-qiniu-") as tmp:
        os.environ["TMPDIR"] = tmp  # the SDK keeps resume records under gettempdir()
        tempfile.tempdir = tmp
        path = os.path.join(tmp, "payload.bin")
        block = os.urandom(min(a.size, 8 << 20)) or b""
        with open(path, "wb") as f:
            left = a.size
            while left:
                f.write(block[: min(left, len(block))])
                left -= min(left, len(block))
        t_all = time.perf_counter()
        for index in range(a.count):
            key = f"{a.prefix}-{uuid.uuid4().hex[:8]}-{index}.bin"
            token = auth.upload_token(a.bucket, key, 7200)
            t0 = time.perf_counter()
            try:
                ret, info = qiniu.put_file(
                    token,
                    key,
                    path,
                    version=a.version,
                    part_size=a.part_size,
                    bucket_name=a.bucket,
                    regions=[region],
                )
            except Exception as exc:  # the SDK raises anything; count it
                res.error(f"{type(exc).__name__}: {exc}")
                continue
            if info.status_code != 200 or not ret or ret.get("key") != key:
                res.error(f"put_file {a.version}: {info.status_code} {str(info)[:250]}")
                continue
            res.latencies.append(time.perf_counter() - t0)
            res.ok += 1
        res.wall_s = time.perf_counter() - t_all
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench.load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("mode", choices=("tus", "ietf", "qiniu-form", "qiniu-sdk"))
    ap.add_argument("--url", required=True)
    ap.add_argument("--size", type=parse_size, required=True, help="bytes per upload (K/M/G)")
    ap.add_argument("--chunk", type=parse_size, default=8 << 20, help="tus PATCH size")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("-c", "--concurrency", type=int, default=1)
    ap.add_argument("--ak", default="bench-ak")
    ap.add_argument("--sk", default="bench-sk")
    ap.add_argument("--bucket", default="default")
    ap.add_argument("--version", choices=("v1", "v2"), default="v2", help="qiniu-sdk")
    ap.add_argument("--part-size", type=parse_size, default=4 << 20, help="qiniu-sdk v2 part")
    ap.add_argument("--prefix", default="bench")
    ap.add_argument(
        "--uptoken",
        action="store_true",
        help="tus/ietf: every request carries 'Authorization: UpToken' (--ak/--sk, --bucket)",
    )
    a = ap.parse_args(argv)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    run_id = uuid.uuid4().hex[:8]
    if a.mode in ("tus", "ietf"):
        buf = memoryview(os.urandom(min(a.chunk, a.size) or 1))
        one = _tus_one if a.mode == "tus" else _ietf_one
        auth = (
            {"Authorization": "UpToken " + _form_token(a.ak, a.sk, a.bucket)} if a.uptoken else None
        )
        res = asyncio.run(
            _run_async(
                a.count,
                a.concurrency,
                lambda s, i: one(s, a.url, a.size, a.chunk, buf, f"{a.prefix}-{run_id}-{i}.bin"),
                auth,
            )
        )
    elif a.mode == "qiniu-form":
        token = _form_token(a.ak, a.sk, a.bucket)
        data = os.urandom(a.size)
        res = asyncio.run(
            _run_async(
                a.count,
                a.concurrency,
                lambda s, i: _form_one(s, a.url, token, data, f"{a.prefix}-{run_id}-{i}.bin"),
            )
        )
    else:
        res = _sdk_run(a)
    return report(res, a.size, ru0)


if __name__ == "__main__":
    sys.exit(main())
