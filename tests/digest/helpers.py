"""Helpers of the digest tests: fields, and records read from a gateway's state."""

from __future__ import annotations

import base64
import hashlib
import sqlite3

from gateway.core import UploadRecord
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
