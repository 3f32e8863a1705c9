"""The state stores core tests run on: SQLite (the default) and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py

from tests.servers.redis import RedisServer


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
