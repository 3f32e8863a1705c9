"""Three gateway instances on one Redis and one store, every request of
tuspy uploads sent to a random instance (ARCHITECTURE.md §7, issue 8)."""

from __future__ import annotations

import http.client
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.scaleout.clients import TUS, fetch, sha, tus_upload
from tests.scaleout.cluster import Cluster
from tests.scaleout.proxy import RandomProxy
from testservers.redis import RedisServer


@pytest.fixture
def proxy(cluster: Cluster, redis_server: RedisServer) -> Iterator[RandomProxy]:
    redis_server.start()  # a failed test may have left it stopped
    cluster.revive()
    assert cluster.proxy is not None
    cluster.proxy.hits.clear()
    cluster.proxy.body_hook = None
    yield cluster.proxy
    cluster.proxy.body_hook = None


def test_100_uploads_through_random_instances(cluster: Cluster, proxy: RandomProxy) -> None:
    rng = random.Random(8)
    sizes = [0, 1, 2] + [rng.randrange(1, 2 * 1024 * 1024) for _ in range(97)]
    sources = [os.urandom(n) for n in sizes]
    chunks = [rng.choice([64, 256, 512]) * 1024 for _ in sizes]

    def one(data: bytes, chunk_size: int) -> tuple[str, str]:
        url = tus_upload(cluster.files_url, data, chunk_size)
        return url, sha(fetch(url))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, sources, chunks))
    for data, (url, digest) in zip(sources, results, strict=True):
        assert url.startswith(proxy.url + "/files/")  # Location honours X-Forwarded-Host
        assert digest == sha(data)
    statuses = Counter(h.status for h in proxy.hits)
    assert set(statuses) <= {200, 201, 204}, statuses
    # the requests of one upload really were spread over the instances
    by_upload: dict[str, set[int]] = {}
    for h in proxy.hits:
        if h.method in ("PATCH", "HEAD", "GET"):
            by_upload.setdefault(h.path, set()).add(h.instance)
    assert Counter(h.instance for h in proxy.hits).keys() == {0, 1, 2}
    assert sum(len(s) >= 2 for s in by_upload.values()) >= 50


def test_instance_killed_mid_patch(cluster: Cluster, proxy: RandomProxy) -> None:
    data = os.urandom(24 * 1024 * 1024)
    killed: list[int] = []

    def hook(instance: int, sent: int) -> None:
        if not killed and sent >= 8 * 1024 * 1024:
            killed.append(instance)
            cluster.gateways[instance].kill()  # SIGKILL while the body streams

    proxy.body_hook = hook
    url = tus_upload(cluster.files_url, data, chunk_size=len(data), delay=0.5)
    assert killed, "no PATCH reached 8 MiB"
    assert sha(fetch(url)) == sha(data)
    patches = [h for h in proxy.hits if h.method == "PATCH"]
    assert patches[0].instance == killed[0] and patches[0].status == 502
    assert patches[-1].status == 204 and patches[-1].instance != killed[0]
    assert not [h for h in proxy.hits if h.status >= 500 and h.status != 502], proxy.hits


# -- two PATCHes for the same upload at once, on two instances -------------------


def _create(base: str, length: int) -> str:
    r = requests.post(f"{base}/files/", headers={**TUS, "Upload-Length": str(length)}, timeout=10)
    assert r.status_code == 201, r.text
    return str(r.headers["Location"]).rsplit("/", 1)[1]


def _patch_slowly(
    base: str, upload_id: str, data: bytes, piece: int, pause: float, out: dict[str, object]
) -> None:
    """PATCH at offset 0, sending ``piece`` bytes every ``pause`` seconds."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest("PATCH", f"/files/{upload_id}")
        for k, v in {
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(len(data)),
        }.items():
            conn.putheader(k, v)
        conn.endheaders()
        for i in range(0, len(data), piece):
            conn.send(data[i : i + piece])
            if pause:
                time.sleep(pause)
    except OSError as exc:  # the server answered early and closed
        out["send_error"] = exc
    try:
        resp = conn.getresponse()
        out["status"] = resp.status
        out["offset"] = resp.getheader("Upload-Offset")
        resp.read()
    except (OSError, http.client.HTTPException) as exc:
        out["error"] = exc
    finally:
        conn.close()


@pytest.mark.parametrize("timing", ["a-first", "together"])
def test_concurrent_patches_never_interleave(
    cluster: Cluster, proxy: RandomProxy, timing: str
) -> None:
    length = 4 * 1024 * 1024
    content = {"a": os.urandom(length), "b": os.urandom(length)}
    bases = {"a": cluster.gateways[0].url, "b": cluster.gateways[1].url}
    for _round in range(3):
        upload_id = _create(bases["a"], length)
        out: dict[str, dict[str, object]] = {"a": {}, "b": {}}
        slow_a = (64 * 1024, 0.02) if timing == "a-first" else (256 * 1024, 0.0)
        threads = {
            "a": threading.Thread(
                target=_patch_slowly, args=(bases["a"], upload_id, content["a"], *slow_a, out["a"])
            ),
            "b": threading.Thread(
                target=_patch_slowly,
                args=(bases["b"], upload_id, content["b"], 256 * 1024, 0.0, out["b"]),
            ),
        }
        threads["a"].start()
        if timing == "a-first":
            time.sleep(0.3)
        threads["b"].start()
        for t in threads.values():
            t.join(60)
        head = requests.head(f"{bases['b']}/files/{upload_id}", headers=TUS, timeout=10)
        offset = int(head.headers["Upload-Offset"])
        statuses = {w: o.get("status") for w, o in out.items()}
        # a PATCH that gave the lock to the other when it asked answers 204
        # with the offset it reached (tests/tus/test_stalled_writer.py): 0 if
        # asked before its first byte. At most one stored any byte
        winners = [w for w, o in out.items() if o.get("status") == 204 and o.get("offset") != "0"]
        assert len(winners) <= 1, out
        if winners:
            assert out[winners[0]]["offset"] == str(offset), (out, offset)
        assert statuses["b"] in (204, 409, 423), out
        # a may see its connection closed after its early answer was sent
        assert statuses["a"] in (204, 409, 423) or "send_error" in out["a"], out
        if timing == "a-first":
            assert "a" in winners or offset > 0, out  # a held the lock first
        winner = winners[0] if winners else ("a" if offset else "b")
        # finish with the winner's bytes: the object must be exactly its content
        rest = content[winner][offset:]
        if rest:
            r = requests.patch(
                f"{bases['a']}/files/{upload_id}",
                data=rest,
                headers={
                    **TUS,
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
                timeout=30,
            )
            assert r.status_code == 204, r.text
        body = fetch(f"{bases['b']}/files/{upload_id}")
        assert sha(body) == sha(content[winner]), (timing, out, offset)


# -- Redis restarted mid-run -------------------------------------------------------


def test_redis_restart_mid_run(
    cluster: Cluster, proxy: RandomProxy, redis_server: RedisServer
) -> None:
    sources = [os.urandom(3 * 1024 * 1024 + i) for i in range(12)]
    before = tus_upload(cluster.files_url, b"finished before the restart", 1024)
    stop_at = threading.Event()

    def watch() -> None:
        while sum(h.status == 204 for h in proxy.hits) < 20:
            time.sleep(0.01)
        redis_server.stop()
        time.sleep(1.5)
        redis_server.start()
        stop_at.set()

    watcher = threading.Thread(target=watch)
    watcher.start()

    def one(data: bytes) -> tuple[str, str]:
        url = tus_upload(cluster.files_url, data, chunk_size=128 * 1024, attempts=40, delay=0.3)
        return url, sha(fetch(url))

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(one, sources))
    watcher.join(30)
    assert stop_at.is_set()
    for data, (_url, digest) in zip(sources, results, strict=True):
        assert digest == sha(data)
    assert fetch(before) == b"finished before the restart"  # nothing lost
    unavailable = [h for h in proxy.hits if h.status == 503]
    assert unavailable, "no request saw the outage"
    for h in unavailable:  # clear 503s (HEAD answers carry no body); the cause is logged
        assert h.headers.get("Retry-After"), h
        assert h.method == "HEAD" or b"retry later (request " in h.body, h.body
    assert not [h for h in proxy.hits if h.status >= 500 and h.status != 503], [
        (h.method, h.status, h.body) for h in proxy.hits if h.status >= 500
    ]
