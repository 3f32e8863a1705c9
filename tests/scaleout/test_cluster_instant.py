"""Instant uploads and deletes at once on three instances sharing Redis and
one store, every request to a random instance: every instant answer names
an object with the right bytes, no object is deleted mid-copy, and the
digest index never names a deleted object."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
from concurrent.futures import ThreadPoolExecutor

import redis as redis_py
import requests

from tests.scaleout.clients import TUS, fetch
from tests.scaleout.cluster import Cluster
from testservers.redis import RedisServer

OCTET = {"Content-Type": "application/offset+octet-stream"}


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
    redis_server.start()
    cluster.revive()
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
    client = redis_py.Redis.from_url(redis_server.url)
    try:
        entries = [json.loads(client.hget(k, "data")) for k in client.scan_iter("ugw:dobj:*")]
    finally:
        client.close()
    assert len(entries) == len(live)
    for entry in entries:
        url = f"{cluster.proxy.url if cluster.proxy else ''}/objects/default/{entry['key']}"
        assert requests.get(url, timeout=30).status_code == 200, entry
