"""Small helpers for driving a gateway with raw tus requests."""

from __future__ import annotations

import base64
import hashlib
import socket
from typing import Any
from urllib.parse import urlsplit

import requests

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}


def create(
    files_url: str, length: int | None, metadata: dict[str, str] | None = None, **headers: str
) -> str:
    h = dict(TUS)
    if length is None:
        h["Upload-Defer-Length"] = "1"
    else:
        h["Upload-Length"] = str(length)
    if metadata:
        h["Upload-Metadata"] = ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items()
        )
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    r = requests.post(files_url, headers=h, timeout=30)
    assert r.status_code == 201, (r.status_code, r.text)
    return str(r.headers["Location"])


def patch(url: str, offset: int, data: bytes, **headers: Any) -> requests.Response:
    h = {**TUS, **OCTET, "Upload-Offset": str(offset)}
    h.update(headers)
    return requests.patch(url, data=data, headers=h, timeout=60)


def head(url: str) -> requests.Response:
    return requests.head(url, headers=TUS, timeout=30)


def offset_of(url: str) -> int:
    r = head(url)
    assert r.status_code == 200, r.status_code
    return int(r.headers["Upload-Offset"])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download(url: str) -> bytes:
    r = requests.get(url, timeout=120)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.content


def open_patch(url: str, offset: int, announced: int, sent: bytes = b"") -> socket.socket:
    """A PATCH announcing ``announced`` bytes of which only ``sent`` go out:
    the connection stays open (a stalled or idle client). Close it to end."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
    head = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n"
        f"Content-Type: {OCTET['Content-Type']}\r\nContent-Length: {announced}\r\n\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


def answer_head(sock: socket.socket) -> tuple[int, dict[str, str]]:
    """The status and headers (lower-case names) of the answer on ``sock``."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        data = sock.recv(4096)
        if not data:
            break
        raw += data
    lines = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers
