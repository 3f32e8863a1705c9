"""Instant uploads and deletes at once on three instances sharing Redis and
one store, every request to a random instance: every instant answer names
an object with the right bytes, no object is deleted mid-copy, and the
digest index never names a deleted object. On local disk and moto by
default (the copy takes time on a store: S3 CopyObject, Swift segment
copies, FastDFS through the gateway), every target through
``GATEWAY_TEST_BACKENDS``."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis as redis_py
import requests

from tests.client.conftest import client_targets
from tests.conftest import get_target
from tests.observability.scrape import scrape, value
from tests.scaleout.clients import TUS, fetch
from tests.scaleout.cluster import Cluster
from tests.support.s3proxy import S3Proxy, server_side_copy
from tests.support.targets import S3Target, Target
from testservers.redis import RedisServer

OCTET = {"Content-Type": "application/offset+octet-stream"}


@pytest.fixture(scope="module", params=client_targets())
def target(request: pytest.FixtureRequest) -> Target:
    return get_target(request.param)


@pytest.fixture(scope="module")
def redis_server(target: Target) -> Iterator[RedisServer]:
    """A Redis of its own per target: the index is read back whole."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def proxy(target: Target) -> Iterator[S3Proxy | None]:
    """On S3, the store answers through a proxy that can hold its copies."""
    if not isinstance(target, S3Target):
        yield None
        return
    with S3Proxy(target.endpoint) as p:
        yield p


@pytest.fixture(scope="module")
def cluster(redis_server: RedisServer, target: Target, proxy: S3Proxy | None) -> Iterator[Cluster]:
    backend = target.backend_config()
    if proxy is not None:
        backend["endpoint_url"] = proxy.url
    c = Cluster(redis_server.url, backend=backend).start()
    try:
        yield c
    finally:
        c.stop()


def _create(cluster: Cluster, data: bytes) -> requests.Response:
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    headers = {**TUS, "Upload-Length": str(len(data)), "Repr-Digest": f"sha-256=:{digest}:"}
    for _ in range(20):
        r = requests.post(cluster.files_url, headers=headers, timeout=60)
        if r.status_code != 503:
            break
    assert r.status_code == 201, (r.status_code, r.text)
    return r


def _finish(url: str, data: bytes) -> str:
    """Send the bytes of an upload that did not match; its object URL."""
    headers = {**TUS, **OCTET, "Upload-Offset": "0"}
    r = requests.patch(url, data=data, headers=headers, timeout=60)
    assert r.status_code == 204, (r.status_code, r.text)
    return str(r.headers["X-Object-Url"])


def test_instant_uploads_and_deletes_on_three_instances(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    rng = random.Random(19)
    data = os.urandom(2 * 1024 * 1024 + 3)
    first = _create(cluster, data)
    _finish(first.headers["Location"], data)
    live: list[str] = [first.headers["Location"]]  # finished uploads not deleted
    deleted: set[str] = set()

    def create() -> tuple[str, str, bool]:
        r = _create(cluster, data)
        url = r.headers["Location"]
        if r.headers["Upload-Offset"] == str(len(data)):
            return url, r.headers["X-Object-Url"], True
        return url, _finish(url, data), False

    def delete(url: str) -> None:
        r = requests.delete(url, headers=TUS, timeout=60)
        assert r.status_code in (204, 410, 503), (r.status_code, r.text)
        if r.status_code == 204:
            deleted.add(url)

    instant = 0
    with ThreadPoolExecutor(8) as pool:
        for _round in range(4):
            creations = [pool.submit(create) for _ in range(8)]
            victims = rng.sample(live, min(2, len(live)))
            deletions = [pool.submit(delete, url) for url in victims]
            for future in deletions:
                future.result()
            for future in creations:
                url, object_url, was_instant = future.result()
                instant += was_instant
                # whatever was deleted meanwhile, this object is whole
                assert hashlib.sha256(fetch(object_url)).digest() == hashlib.sha256(data).digest()
                live.append(url)
            live = [u for u in live if u not in deleted]
    assert instant >= 8  # most creations found a copy to make
    for url in live:
        head = requests.head(url, headers=TUS, timeout=30)
        assert fetch(head.headers["X-Object-Url"]) == data
    # the index names only objects that are there
    entries = _index(redis_server, data)
    assert len(entries) == len(live)
    for entry in entries:
        assert requests.get(_object_url(cluster, entry["key"]), timeout=30).status_code == 200


def _index(redis_server: RedisServer, data: bytes) -> list[dict[str, Any]]:
    """The digest index's entries for ``data``, read from Redis itself."""
    client = redis_py.Redis.from_url(redis_server.url)
    try:
        entries = [json.loads(client.hget(k, "data")) for k in client.scan_iter("ugw:dobj:*")]
    finally:
        client.close()
    return [e for e in entries if e["sha256"] == hashlib.sha256(data).hexdigest()]


def _object_url(cluster: Cluster, key: str) -> str:
    assert cluster.proxy is not None
    return f"{cluster.proxy.url}/objects/default/{key}"


def _long_lock_waits(cluster: Cluster) -> float:
    """Lock acquisitions that waited over 50 ms, all instances together."""
    total = 0.0
    for gw in cluster.gateways:
        samples = scrape(gw.url)
        name = "upload_gateway_lock_wait_seconds"
        total += value(samples, name + "_count") - value(samples, name + "_bucket", le="0.05")
    return total


def test_a_source_deleted_while_it_is_copied(
    cluster: Cluster, redis_server: RedisServer, target: Target, proxy: S3Proxy | None
) -> None:
    """The one object holding some bytes is deleted (tus DELETE, one
    instance) while an instant upload copies it (another): the deletion
    waits for the copy (the source's lock), the copy is whole, and the index
    then names the copy only. On S3 the store holds the copy until the
    deletion has been seen waiting; elsewhere the deletion is sent a third
    of a copy's time in, or it comes first and the creation is an ordinary
    upload."""
    data = os.urandom(24 * 1024 * 1024 + 1)
    first = _create(cluster, data)
    _finish(first.headers["Location"], data)
    # how long a copy takes on this store; then only the source holds the bytes
    start = time.monotonic()
    probe = _create(cluster, data)
    copy_s = time.monotonic() - start
    assert probe.headers["Upload-Offset"] == str(len(data))
    assert requests.delete(probe.headers["Location"], headers=TUS, timeout=60).status_code == 204
    source = first.headers["Location"]
    overlapped = 0
    with ThreadPoolExecutor(2) as pool:
        for attempt in range(3):
            waits = _long_lock_waits(cluster)
            held = f"copy-{attempt}"
            if proxy is not None:
                proxy.hold(held, server_side_copy)
            creation = pool.submit(_create, cluster, data)
            if proxy is not None:
                proxy.wait_held(held)
                pending = pool.submit(requests.delete, source, headers=TUS, timeout=60)
                time.sleep(0.5)
                assert not pending.done(), "the deletion did not wait for the copy"
                proxy.release(held)
                deletion = pending.result()
            else:
                time.sleep(copy_s / 3)  # the copy is under way
                deletion = requests.delete(source, headers=TUS, timeout=60)
            assert deletion.status_code == 204, deletion.text
            r = creation.result()
            if r.headers["Upload-Offset"] == str(len(data)):
                object_url = r.headers["X-Object-Url"]
                overlapped += _long_lock_waits(cluster) > waits  # the deletion waited
            else:  # the deletion came first: nothing to copy, the bytes are sent
                assert proxy is None, "the copy was held, yet the deletion came first"
                object_url = _finish(r.headers["Location"], data)
            assert hashlib.sha256(fetch(object_url)).digest() == hashlib.sha256(data).digest()
            [entry] = _index(redis_server, data)
            # (the store's own URL on Swift and FastDFS: compare the key)
            assert urlsplit(object_url).path.endswith("/" + entry["key"]), (entry, object_url)
            source = r.headers["Location"]
    if proxy is not None:
        assert overlapped == 3
    elif target.name != "local":  # a hard link leaves no time to delete during it
        assert overlapped >= 1, f"no deletion met a copy in 3 attempts (copy {copy_s:.2f} s)"
