"""SQLite state store: the embedded default for one gateway machine.

One connection. WAL journal, ``synchronous=NORMAL``: a commit appends to the
WAL file (no fsync; a SIGKILLed gateway loses nothing it saved), so the
upload hot path's point queries (``get``, ``create``, ``save``) run in the
event loop itself, which costs less than the hand-off of each to a thread
(``bench/RESULTS.md`` has the figures).
Everything else runs in one dedicated thread; transactions must not
interleave on the connection, so a point query waits (in the loop) for the
thread's calls to be done rather than queue behind them. A call that finds
the database locked by another connection goes to the thread too: the loop
never waits on a lock (``busy_timeout`` is 0 there).

What can block on disk, the checkpoints that copy the WAL into the database
and fsync both, stays off the loop: automatic checkpoints are off and the
thread runs one every ``_CHECKPOINT_EVERY`` calls. On the same connection,
not from a second one concurrently: with commits landing while it runs, a
concurrent checkpoint never catches up, and the WAL (and the page cache it
occupies) grows without end instead of being restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gateway.core.errors import ServiceUnavailable, UploadExists
from gateway.core.records import Status, UploadRecord
from gateway.core.state.base import Cursor, IndexedObject, StateStore

T = TypeVar("T")

log = logging.getLogger(__name__)

_BUSY_TIMEOUT_MS = 5000  # in the thread; 0 in the event loop
_CHECKPOINT_EVERY = 256  # calls between two WAL checkpoints
_IN_BATCH = 500  # ids per ``IN (...)`` of ``get_many`` (under SQLite's variable limit)

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
CREATE TABLE IF NOT EXISTS object_digests (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    owner TEXT NOT NULL,
    upload_id TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX IF NOT EXISTS object_digests_by_owner ON object_digests (bucket, sha256, size, owner);
"""

_DIGEST_COLUMNS = "bucket, key, sha256, size, owner, upload_id"


class SQLiteStateStore(StateStore):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-state")
        self._db: sqlite3.Connection | None = None
        #: held by whoever uses the connection: the thread (blocking) or the
        #: event loop (only if free at once)
        self._busy = threading.Lock()
        #: calls handed to the thread and not answered; an inline call waits
        #: for them (in the loop) rather than queue behind them in the thread
        self._threaded = 0
        self._thread_idle: asyncio.Event | None = None
        self._calls = 0  # since the last checkpoint
        self._checkpointing: asyncio.Task[None] | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, inline: bool = False) -> T:
        """``fn`` in one transaction: in the event loop if ``inline`` (a
        point query), once the thread is done with the connection; else in
        the thread."""
        self._calls += 1
        if (
            self._calls >= _CHECKPOINT_EVERY
            and self._checkpointing is None
            and self._db is not None
        ):
            self._start_checkpoint()
        while inline and self._db is not None:
            if self._threaded and self._thread_idle is not None:
                await self._thread_idle.wait()
                continue
            if not self._busy.acquire(blocking=False):
                break  # a thread call cut short by cancellation still runs
            try:
                with self._db:
                    return fn(self._db)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise ServiceUnavailable(f"state store: {exc}") from exc
                break  # another connection holds the lock: wait for it in the thread
            finally:
                self._busy.release()

        def call() -> T:
            with self._busy:
                assert self._db is not None, "state store is not open"
                self._db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
                try:
                    with self._db:  # one transaction per call
                        return fn(self._db)
                finally:
                    self._db.execute("PRAGMA busy_timeout=0")

        if self._thread_idle is None:
            self._thread_idle = asyncio.Event()
        self._threaded += 1
        self._thread_idle.clear()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except sqlite3.OperationalError as exc:
            raise ServiceUnavailable(f"state store: {exc}") from exc
        finally:
            self._threaded -= 1
            if not self._threaded:
                self._thread_idle.set()

    def _start_checkpoint(self) -> None:
        self._calls = 0

        async def checkpoint() -> None:
            try:
                await self._run(lambda db: db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
            except Exception as exc:
                log.warning("state store checkpoint failed: %s", exc)
            finally:
                self._checkpointing = None

        self._checkpointing = asyncio.get_running_loop().create_task(checkpoint())

    async def open(self) -> None:
        def connect() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            db.isolation_level = "DEFERRED"  # ``with db`` opens/commits transactions
            db.executescript(_SCHEMA)
            # checkpoints run in their own thread (``_start_checkpoint``), not
            # in whichever call (maybe in the event loop) crosses the threshold
            db.execute("PRAGMA wal_autocheckpoint=0")
            db.execute("PRAGMA busy_timeout=0")
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        if self._checkpointing is not None:
            with contextlib.suppress(Exception):
                await self._checkpointing
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=False)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def create(self, record: UploadRecord) -> None:
        record.version = 1
        data = record.to_json()

        def insert(db: sqlite3.Connection) -> bool:
            try:
                db.execute(
                    "INSERT INTO uploads (id, version, expires_at, data) VALUES (?, ?, ?, ?)",
                    (record.id, record.version, record.expires_at, data),
                )
            except sqlite3.IntegrityError:  # the id is taken: by this very record?
                row = db.execute("SELECT data FROM uploads WHERE id = ?", (record.id,)).fetchone()
                return row is not None and row[0] == data
            return True

        if not await self._run(insert, inline=True):
            record.version = 0
            raise UploadExists(f"upload {record.id} exists")

    async def get(self, upload_id: str) -> UploadRecord | None:
        row = await self._run(
            lambda db: db.execute("SELECT data FROM uploads WHERE id = ?", (upload_id,)).fetchone(),
            inline=True,
        )
        return UploadRecord.from_json(row[0]) if row else None

    async def get_many(self, upload_ids: list[str]) -> list[UploadRecord | None]:
        def select(db: sqlite3.Connection) -> list[tuple[str, str]]:
            rows: list[tuple[str, str]] = []
            for start in range(0, len(upload_ids), _IN_BATCH):
                batch = upload_ids[start : start + _IN_BATCH]
                marks = ",".join("?" * len(batch))
                query = f"SELECT id, data FROM uploads WHERE id IN ({marks})"
                rows += db.execute(query, batch).fetchall()
            return rows

        found = {i: UploadRecord.from_json(d) for i, d in await self._run(select)}
        return [found.get(i) for i in upload_ids]

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
            ),
            inline=True,
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

    async def unfinished(
        self, limit: int = 100, *, after: Cursor | None = None, newest_first: bool = False
    ) -> list[UploadRecord]:
        past, order = ("<", "DESC") if newest_first else (">", "ASC")
        where = "" if after is None else f" AND (expires_at, id) {past} (?, ?)"
        args: tuple[Any, ...] = (Status.ACTIVE.value, Status.COMPLETE.value)
        args += () if after is None else (after[0], after[1])
        rows = await self._run(
            lambda db: db.execute(
                "SELECT data FROM uploads WHERE expires_at IS NOT NULL"
                f" AND json_extract(data, '$.status') IN (?, ?){where}"
                f" ORDER BY expires_at {order}, id {order} LIMIT ?",
                (*args, limit),
            ).fetchall()
        )
        return [UploadRecord.from_json(r[0]) for r in rows]

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

    # -- the digest index ----------------------------------------------------------
    async def index_put(self, entry: IndexedObject) -> None:
        row = (entry.bucket, entry.key, entry.sha256, entry.size, entry.owner, entry.upload_id)
        await self._run(
            lambda db: db.execute(
                f"INSERT OR REPLACE INTO object_digests ({_DIGEST_COLUMNS}) VALUES (?,?,?,?,?,?)",
                row,
            ),
            inline=True,  # a point write on every finish, like ``save``
        )

    async def index_remove(self, bucket: str, key: str, upload_id: str | None = None) -> None:
        query = "DELETE FROM object_digests WHERE bucket = ? AND key = ?"
        args: tuple[str, ...] = (bucket, key)
        if upload_id is not None:
            query, args = query + " AND upload_id = ?", (*args, upload_id)
        await self._run(lambda db: db.execute(query, args), inline=True)

    async def index_get(self, bucket: str, key: str) -> IndexedObject | None:
        row = await self._run(
            lambda db: db.execute(
                f"SELECT {_DIGEST_COLUMNS} FROM object_digests WHERE bucket = ? AND key = ?",
                (bucket, key),
            ).fetchone()
        )
        return IndexedObject(*row) if row else None

    async def index_find(
        self, bucket: str, sha256: str, size: int, owner: str | None, limit: int = 8
    ) -> list[IndexedObject]:
        query = (
            f"SELECT {_DIGEST_COLUMNS} FROM object_digests"
            " WHERE bucket = ? AND sha256 = ? AND size = ?"
        )
        args: tuple[str | int, ...] = (bucket, sha256, size)
        if owner is not None:
            query, args = query + " AND owner = ?", (*args, owner)
        rows = await self._run(lambda db: db.execute(query + " LIMIT ?", (*args, limit)).fetchall())
        return [IndexedObject(*r) for r in rows]
