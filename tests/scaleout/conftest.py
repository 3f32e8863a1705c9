"""Fixtures of the scale-out tests: one Redis for the module, a clean
database for each test, a cluster of three instances on the local store for
the module (modules on other stores define their own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis as redis_py

from tests.scaleout.cluster import Cluster
from testservers.redis import RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    redis_server.start()  # a test may have left it stopped
    client = redis_py.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    yield redis_server.url


@pytest.fixture(scope="module")
def cluster(redis_server: RedisServer) -> Iterator[Cluster]:
    c = Cluster(redis_server.url).start()
    try:
        yield c
    finally:
        c.stop()
