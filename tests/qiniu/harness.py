"""Helpers for driving the Qiniu front-end with the official SDK and raw HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import qiniu
from qiniu import Region

from backends.base import BackendContext
from backends.registry import backend_class
from gateway.core.budget import Budget
from gateway.core.digests import SHA256
from gateway.core.records import Status, UploadRecord
from gateway.core.state.sqlite import SQLiteStateStore
from tests.conftest import gateway_config
from tests.support.targets import Target
from testservers.gateway import GatewayProcess

MiB = 1024 * 1024
AK, SK = "test-access-key", "test-secret-key"
AUTH = qiniu.Auth(AK, SK)
BUCKET = "photos"
PREFIX = "ph/"


def qiniu_config(target: Target, **qiniu_overrides: Any) -> dict[str, Any]:
    config = gateway_config(target)
    config["buckets"] = {
        "default": {"backend": "default"},
        BUCKET: {"backend": "default", "prefix": PREFIX},
    }
    config["qiniu"] = {
        "enabled": True,
        "keys": [{"access_key": AK, "secret_key": SK}],
        **qiniu_overrides,
    }
    return config


def region(gw: GatewayProcess) -> Region:
    return Region(up_host=gw.url, up_host_backup=gw.url, scheme="http")


def token(key: str | None = None, expires: int = 3600, bucket: str = BUCKET, **policy: Any) -> str:
    return str(AUTH.upload_token(bucket, key, expires, policy or None, strict_policy=False))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MiB):
            digest.update(block)
    return digest.hexdigest()


def v2_etag(path: Path, part_size: int) -> str:
    """The doc's v2 formula, written out independently of the gateway's code."""
    joined = b""
    with open(path, "rb") as f:
        while part := f.read(part_size):
            blocks = [part[i : i + 4 * MiB] for i in range(0, len(part), 4 * MiB)]
            sha1s = [hashlib.sha1(b).digest() for b in blocks]
            joined += sha1s[0] if len(sha1s) == 1 else hashlib.sha1(b"".join(sha1s)).digest()
    return base64.urlsafe_b64encode(b"\x9e" + hashlib.sha1(joined).digest()).decode()


def recorded_sha256(gw: GatewayProcess, key: str) -> str:
    """The SHA-256 the gateway recorded for the finished object ``key``."""
    with sqlite3.connect(gw.workdir / "state.db") as db:
        rows = db.execute("SELECT data FROM uploads").fetchall()
    records = [UploadRecord.from_json(r[0]) for r in rows]
    [found] = [
        r for r in records if r.bucket == BUCKET and r.key == key and r.status is Status.FINISHED
    ]
    return str(found.extra[SHA256])


def read_back(gw: GatewayProcess, key: str, prefix: str = PREFIX) -> str:
    """SHA-256 of the object as the gateway's backend itself serves it (not via
    the gateway's HTTP API), with the gateway's state store as its KV (FastDFS
    maps keys to file ids there)."""

    async def read() -> str:
        raw = gw.config["backends"]["default"]
        cls = backend_class(raw["type"])
        state = SQLiteStateStore(gw.workdir / "state.db")
        await state.open()
        context = BackendContext(kv=state, budget=Budget(64 * MiB))
        backend = cls("check", cls.config_model.model_validate(raw), context)
        await backend.start()
        try:
            digest = hashlib.sha256()
            async for chunk in backend.read(prefix + key):
                digest.update(chunk)
            return digest.hexdigest()
        finally:
            await backend.close()
            await state.close()

    return asyncio.run(read())


class CallbackServer:
    """A business server on loopback that records Qiniu callbacks."""

    def __init__(self, status: int = 200, answer: dict[str, Any] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = status
        self.answer = answer or {"ok": True}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                url = f"http://{self.headers['Host']}{self.path}"
                outer.requests.append(
                    {
                        "path": self.path,
                        "body": body,
                        "headers": dict(self.headers),
                        "verified": AUTH.verify_callback(
                            self.headers.get("Authorization", ""),
                            url,
                            body,
                            self.headers.get("Content-Type", ""),
                        ),
                    }
                )
                payload = json.dumps({**outer.answer, "echo": body}).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/qiniu/callback"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> CallbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stream_files(target: Target) -> Iterator[Path]:
    """Unfinished stream files (local target only): leftovers of failed uploads."""
    root = Path(target.backend_config().get("root", "/nonexistent")) / "streams"
    return iter(sorted(root.glob("*"))) if root.is_dir() else iter(())
