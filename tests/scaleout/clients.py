"""Client helpers of the scale-out tests: tuspy uploads that survive
outages, downloads, digests."""

from __future__ import annotations

import hashlib
import io
import time

import requests
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

TUS = {"Tus-Resumable": "1.0.0"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tus_upload(
    files_url: str, data: bytes, chunk_size: int, *, attempts: int = 20, delay: float = 0.3
) -> str:
    """Upload with tuspy, creating again if creation itself fails (tuspy only
    retries chunks); return the upload URL."""
    client = TusClient(files_url, headers=TUS)
    for attempt in range(attempts):
        try:
            uploader = client.uploader(
                file_stream=io.BytesIO(data),
                chunk_size=chunk_size,
                retries=attempts,
                retry_delay=delay,
                metadata={"filename": "f.bin"},
            )
            uploader.upload()
            assert uploader.url is not None
            return str(uploader.url)
        except TusCommunicationError:
            if attempt == attempts - 1:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


def fetch(url: str) -> bytes:
    for _ in range(20):
        r = requests.get(url, timeout=60)
        if r.status_code != 503:
            break
        time.sleep(0.3)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.content
