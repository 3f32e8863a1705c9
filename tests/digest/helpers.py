"""Helpers of the digest tests: fields, and records read from a gateway's state."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sqlite3

from gateway.app import close_service, open_service
from gateway.config import load_config
from gateway.core import UploadRecord
from gateway.core.digests import REJECTED
from testservers.gateway import GatewayProcess


def repr_digest(data: bytes, *algorithms: str) -> str:
    """``Repr-Digest`` of ``data`` (sha-256 unless other algorithms are named)."""
    members = []
    for algorithm in algorithms or ("sha-256",):
        digest = hashlib.new(algorithm.replace("-", ""), data).digest()
        members.append(f"{algorithm}=:{base64.b64encode(digest).decode()}:")
    return ", ".join(members)


def record_of(gw: GatewayProcess, url_or_id: str) -> UploadRecord:
    """The record of an upload, read from the gateway's SQLite state."""
    upload_id = url_or_id.rstrip("/").rsplit("/", 1)[-1]
    with sqlite3.connect(gw.workdir / "state.db") as db:
        [row] = db.execute("SELECT data FROM uploads WHERE id = ?", (upload_id,)).fetchall()
    return UploadRecord.from_json(row[0])


def refused(gw: GatewayProcess) -> dict[str, str | None]:
    """The uploads refused for their digest so far: id -> the key their
    object would have had (``digests.REJECTED`` on the tombstone)."""
    with sqlite3.connect(gw.workdir / "state.db") as db:
        rows = db.execute("SELECT data FROM uploads").fetchall()
    records = [UploadRecord.from_json(row[0]) for row in rows]
    return {r.id: r.key for r in records if REJECTED in r.extra}


def stored_sha256(gw: GatewayProcess, key: str, bucket: str = "default") -> str | None:
    """The SHA-256 the store keeps with the object (its backend's ``stat``),
    through a service over the gateway's own configuration."""
    config = load_config(
        {**gw.config, "state": {"type": "sqlite", "path": str(gw.workdir / "state.db")}}
    )

    async def stat() -> str | None:
        service = await open_service(config)
        try:
            info = await service.stat_object(bucket, key)
            return info.sha256 if info is not None else None
        finally:
            await close_service(service)

    return asyncio.run(stat())
