"""What ``mkfile`` (v1) and v2 complete cost for a 256 MiB file: 64 blocks /
parts of 4 MiB, below S3's 5 MiB minimum part, so S3 assembles them by
bounded copy-through. Prints the timings (``pytest -s -m slow``)."""

from __future__ import annotations

import base64
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.qiniu.harness import BUCKET, MiB, read_back, token
from tests.support.targets import Target
from testservers.gateway import GatewayProcess

SIZE = 256 * MiB
BLOCK = 4 * MiB


def _block(seed: int) -> bytes:
    # cheap, distinct, reproducible content
    return hashlib.sha256(str(seed).encode()).digest() * (BLOCK // 32)


@pytest.mark.slow
def test_mkfile_and_complete_cost_256mib(qgw: GatewayProcess, target: Target) -> None:
    headers = {"Authorization": f"UpToken {token()}"}
    count = SIZE // BLOCK
    whole = hashlib.sha256()
    for i in range(count):
        whole.update(_block(i))

    def mkblk(i: int) -> str:
        r = requests.post(f"{qgw.url}/mkblk/{BLOCK}", data=_block(i), headers=headers, timeout=120)
        assert r.status_code == 200, r.text
        return str(r.json()["ctx"])

    started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        ctxs = list(pool.map(mkblk, range(count)))
    blocks_done = time.monotonic()
    key = f"cost/v1-{target.name}"
    r = requests.post(
        f"{qgw.url}/mkfile/{SIZE}/key/{_b64(key)}",
        data=",".join(ctxs),
        headers=headers,
        timeout=600,
    )
    mkfile_done = time.monotonic()
    assert r.status_code == 200, r.text
    assert read_back(qgw, key) == whole.hexdigest()

    obj = _b64(f"cost/v2-{target.name}")
    base = f"{qgw.url}/buckets/{BUCKET}/objects/{obj}/uploads"
    upload_id = requests.post(base, headers=headers, timeout=30).json()["uploadId"]

    def part(i: int) -> dict[str, object]:
        r = requests.put(
            f"{base}/{upload_id}/{i + 1}", data=_block(i), headers=headers, timeout=120
        )
        assert r.status_code == 200, r.text
        return {"partNumber": i + 1, "etag": r.json()["etag"]}

    v2_started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        parts = list(pool.map(part, range(count)))
    parts_done = time.monotonic()
    r = requests.post(f"{base}/{upload_id}", json={"parts": parts}, headers=headers, timeout=600)
    complete_done = time.monotonic()
    assert r.status_code == 200, r.text
    print(
        f"\n[{target.name}] 256 MiB v1: blocks {blocks_done - started:.1f}s, "
        f"mkfile {mkfile_done - blocks_done:.2f}s | v2: parts {parts_done - v2_started:.1f}s, "
        f"complete {complete_done - parts_done:.2f}s"
    )


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()
