"""SQLite state store: the embedded default for one gateway machine.

One connection, used from one dedicated thread so the event loop never
blocks on disk. WAL journal: a SIGKILLed gateway loses nothing it saved.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from gateway.core.errors import ServiceUnavailable
from gateway.core.records import UploadRecord
from gateway.core.state.base import StateStore

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    expires_at REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_expiry ON uploads (expires_at);
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);
"""


class SQLiteStateStore(StateStore):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-state")
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None, "state store is not open"
            with self._db:  # one transaction per call
                return fn(self._db)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except sqlite3.OperationalError as exc:
            raise ServiceUnavailable(f"state store: {exc}") from exc

    async def open(self) -> None:
        def connect() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.isolation_level = "DEFERRED"  # ``with db`` opens/commits transactions
            db.executescript(_SCHEMA)
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=False)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def create(self, record: UploadRecord) -> None:
        record.version = 1
        data = record.to_json()
        await self._run(
            lambda db: db.execute(
                "INSERT INTO uploads (id, version, expires_at, data) VALUES (?, ?, ?, ?)",
                (record.id, record.version, record.expires_at, data),
            )
        )

    async def get(self, upload_id: str) -> UploadRecord | None:
        row = await self._run(
            lambda db: db.execute("SELECT data FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        )
        return UploadRecord.from_json(row[0]) if row else None

    async def save(self, record: UploadRecord) -> bool:
        old = record.version
        record.version = old + 1
        data = record.to_json()
        changed = await self._run(
            lambda db: (
                db.execute(
                    "UPDATE uploads SET version = ?, expires_at = ?, data = ? "
                    "WHERE id = ? AND version = ?",
                    (record.version, record.expires_at, data, record.id, old),
                ).rowcount
            )
        )
        if not changed:
            record.version = old
        return bool(changed)

    async def delete(self, upload_id: str) -> None:
        await self._run(lambda db: db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,)))

    async def expired(self, now: float, limit: int = 100) -> list[str]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT id FROM uploads WHERE expires_at IS NOT NULL AND expires_at < ? LIMIT ?",
                (now, limit),
            ).fetchall()
        )
        return [r[0] for r in rows]

    async def kv_get(self, namespace: str, key: str) -> str | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
        )
        return row[0] if row else None

    async def kv_set(self, namespace: str, key: str, value: str) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO kv (namespace, key, value) VALUES (?, ?, ?)",
                (namespace, key, value),
            )
        )

    async def kv_delete(self, namespace: str, key: str) -> None:
        await self._run(
            lambda db: db.execute(
                "DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            )
        )
