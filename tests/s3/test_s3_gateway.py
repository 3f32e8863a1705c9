"""Real tus clients through a gateway to each S3 server: small chunks are
packed into full parts, empty uploads work, and nothing is left behind."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path

import requests
from tusclient import client as tus

from tests.s3.conftest import S3Gateway
from tests.tus.helpers import TUS, create, download, offset_of

KiB = 1024
MiB = 1024 * KiB


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_tuspy_small_chunks_are_packed_into_parts(s3_gateway: S3Gateway, tmp_path: Path) -> None:
    data = os.urandom(20 * MiB)
    source = tmp_path / "packed.bin"
    source.write_bytes(data)
    uploader = tus.TusClient(s3_gateway.process.files_url).uploader(
        str(source), chunk_size=256 * KiB, metadata={"filename": source.name}
    )
    uploader.upload()
    assert uploader.url is not None
    assert _sha(download(uploader.url)) == _sha(data)
    key = uploader.url.rsplit("/", 1)[1]
    stored = s3_gateway.s3.get_object(Bucket=s3_gateway.bucket, Key=key)
    assert _sha(stored["Body"].read()) == _sha(data)
    # 80 PATCHes became three parts (8 + 8 + 4 MiB), not 80
    assert stored["ETag"].strip('"').endswith("-3")
    assert s3_gateway.leftovers() == []


def test_zero_byte_upload(s3_gateway: S3Gateway, tmp_path: Path) -> None:
    source = tmp_path / "empty"
    source.write_bytes(b"")
    uploader = tus.TusClient(s3_gateway.process.files_url).uploader(str(source), chunk_size=MiB)
    uploader.upload()
    assert uploader.url is not None
    assert download(uploader.url) == b""
    key = uploader.url.rsplit("/", 1)[1]
    head = s3_gateway.s3.head_object(Bucket=s3_gateway.bucket, Key=key)
    assert head["ContentLength"] == 0
    assert s3_gateway.leftovers() == []


def test_terminate_leaves_nothing(s3_gateway: S3Gateway) -> None:
    url = create(s3_gateway.process.files_url, 12 * MiB)
    data = os.urandom(9 * MiB + 3)  # one full part and a tail
    h = {**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    assert requests.patch(url, data=data, headers=h, timeout=60).status_code == 204
    assert s3_gateway.leftovers() != []
    assert requests.delete(url, headers=TUS, timeout=30).status_code == 204
    assert s3_gateway.leftovers() == []


def test_disconnect_inside_a_forwarded_part_keeps_what_arrived(s3_gateway: S3Gateway) -> None:
    data = os.urandom(20 * MiB)
    url = create(s3_gateway.process.files_url, len(data))
    path = url.replace(s3_gateway.process.url, "")
    sent = 13 * MiB + 5  # one full part, then most of a forwarded second one
    with socket.create_connection(("127.0.0.1", s3_gateway.process.port)) as s:
        head = (
            f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
            "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        s.sendall(head.encode() + data[:sent])
        time.sleep(0.5)
    deadline = time.time() + 10
    while offset_of(url) != sent and time.time() < deadline:
        time.sleep(0.1)
    assert offset_of(url) == sent  # 8 MiB part + tail: every byte that arrived
    h = {**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(sent)}
    r = requests.patch(url, data=data[sent:], headers=h, timeout=60)
    assert r.status_code == 204
    assert _sha(download(url)) == _sha(data)
    assert s3_gateway.leftovers() == []
