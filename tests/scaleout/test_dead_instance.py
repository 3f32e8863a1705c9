"""Uploads of a SIGKILLed instance continue on another within 5 s (issue 15,
class 4): three instances on Redis with the default lock lease; in each
round a PATCH streams into one instance, which is killed while it holds the
upload's lock, and a client resumes at once on another instance. The resume
waits only for the dead holder's short lease, never for ``acquire_timeout``,
and the object is byte-identical.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_py
import requests

from gateway.config import LocksConfig
from gateway.core.redis_conn import DEFAULT_PREFIX
from tests.conftest import get_target
from tests.scaleout.clients import TUS, fetch, sha
from tests.scaleout.cluster import Cluster
from tests.support.targets import selected_targets
from tests.tus.helpers import create, open_patch
from testservers.redis import RedisServer

MiB = 1024 * 1024
#: the promise: a dead instance's uploads continue elsewhere within this
TAKEOVER = 5.0

STORES = [s for s in ("local", "s3-moto", "swift") if s in selected_targets()]


@pytest.fixture(scope="module", params=STORES)
def cluster(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[Cluster]:
    backend: dict[str, Any] | None = None
    if request.param != "local":
        backend = get_target(request.param).backend_config()
    c = Cluster(redis_server.url, backend=backend).start()
    try:
        yield c
    finally:
        c.stop()


def _lock_ttl_ms(client: redis_py.Redis, upload_id: str, within: float = 10.0) -> int:
    """The remaining lease of the upload's lock, once somebody holds it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ttl = int(client.pttl(f"{DEFAULT_PREFIX}lock:{upload_id}"))
        if ttl > 0:
            return ttl
        time.sleep(0.02)
    raise AssertionError("nobody took the upload's lock")


def test_default_lease_is_short() -> None:
    assert LocksConfig().lease <= 3.0  # the 5 s promise rests on it


def test_killed_holder_is_replaced_within_5s(cluster: Cluster, redis_server: RedisServer) -> None:
    client = redis_py.Redis.from_url(redis_server.url)
    try:
        for victim in range(len(cluster.gateways)):
            other = cluster.gateways[(victim + 1) % len(cluster.gateways)]
            data = os.urandom(6 * MiB + 11)
            upload_id = create(other.files_url, len(data)).rsplit("/", 1)[1]
            base = cluster.gateways[victim].url
            sock = open_patch(f"{base}/files/{upload_id}", 0, len(data), data[: 2 * MiB])
            try:
                assert _lock_ttl_ms(client, upload_id) > 0  # the victim holds the lock
                time.sleep(1.0)  # and has renewed it: a live lease, not a fresh one
                assert int(client.pttl(f"{DEFAULT_PREFIX}lock:{upload_id}")) > 0
                cluster.gateways[victim].kill()
                killed_at = time.monotonic()
                head = requests.head(f"{other.url}/files/{upload_id}", headers=TUS, timeout=10)
                offset = int(head.headers["Upload-Offset"])  # the victim saved nothing
                assert offset == 0
                resumed = requests.patch(
                    f"{other.url}/files/{upload_id}",
                    data=data,
                    headers={
                        **TUS,
                        "Upload-Offset": "0",
                        "Content-Type": "application/offset+octet-stream",
                    },
                    timeout=30,
                )
                took = time.monotonic() - killed_at
            finally:
                sock.close()
            assert resumed.status_code == 204, (resumed.status_code, resumed.text)
            assert took < TAKEOVER, f"round {victim}: the upload resumed after {took:.1f}s"
            assert sha(fetch(f"{other.url}/files/{upload_id}")) == sha(data)
            cluster.revive()
    finally:
        client.close()
