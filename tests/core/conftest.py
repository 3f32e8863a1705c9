"""The implementations core tests run on: state stores SQLite (the default)
and Redis, locks in memory and on Redis. ``state`` is the configuration of a
service; ``make_store`` a bare store and ``make_locks`` a bare lock manager
(each in a fresh Redis namespace per test)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py

from gateway.core.locks import LockManager, MemoryLocks
from gateway.core.redis_locks import RedisLocks
from gateway.core.state.base import StateStore
from gateway.core.state.redis import RedisStateStore
from gateway.core.state.sqlite import SQLiteStateStore
from testservers.redis import RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer(persist=False) as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"type": "sqlite", "path": str(tmp_path / "state.db")}
    server: RedisServer = request.getfixturevalue("redis_server")
    client = redis_py.Redis.from_url(server.url)
    client.flushdb()  # no records of an earlier test
    client.close()
    return {"type": "redis", "url": server.url}


@pytest.fixture(params=["sqlite", "redis"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], StateStore]]:
    if request.param == "sqlite":
        yield lambda: SQLiteStateStore(tmp_path / "state.db")
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"t{time.monotonic_ns()}:"  # a fresh namespace per test
        yield lambda: RedisStateStore(server.url, prefix=prefix)


@pytest.fixture(params=["memory", "redis"])
def make_locks(request: pytest.FixtureRequest) -> Iterator[Callable[[], LockManager]]:
    """Lock managers of one gateway each: in memory there is one gateway (every
    call gives the same manager), on Redis each call another instance (waits at
    most 2 s for a lock; leases of 1 s)."""
    if request.param == "memory":
        only = MemoryLocks(acquire_timeout=2.0)
        yield lambda: only
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"l{time.monotonic_ns()}:"
        yield lambda: RedisLocks(server.url, 2.0, lease=1.0, prefix=prefix)
