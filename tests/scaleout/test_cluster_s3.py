"""The scale-out tests on S3 (moto): multipart state, tails and part
numbers live in the shared record, so any instance continues any upload."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import get_target
from tests.scaleout.clients import fetch, sha, tus_upload
from tests.scaleout.cluster import Cluster
from tests.support.targets import S3Target, selected_targets
from testservers.redis import RedisServer

MiB = 1024 * 1024

pytestmark = pytest.mark.skipif(
    "s3-moto" not in selected_targets(), reason="s3-moto not in GATEWAY_TEST_BACKENDS"
)


@pytest.fixture(scope="module")
def s3() -> S3Target:
    target = get_target("s3-moto")
    assert isinstance(target, S3Target)
    return target


@pytest.fixture(scope="module")
def cluster(redis_server: RedisServer, s3: S3Target) -> Iterator[Cluster]:
    c = Cluster(redis_server.url, backend=s3.backend_config()).start()
    try:
        yield c
    finally:
        c.stop()


def test_uploads_through_random_instances(cluster: Cluster, s3: S3Target) -> None:
    rng = random.Random(3)
    sizes = [0, 1, *(rng.randrange(1, 14 * MiB) for _ in range(18))]
    sources = [os.urandom(n) for n in sizes]
    chunks = [rng.choice([1, 3, 6]) * MiB for _ in sizes]  # short tails, and parts

    def one(data: bytes, chunk_size: int) -> str:
        return sha(fetch(tus_upload(cluster.files_url, data, chunk_size)))

    with ThreadPoolExecutor(6) as pool:
        digests = list(pool.map(one, sources, chunks))
    assert digests == [sha(d) for d in sources]
    assert cluster.proxy is not None
    assert set(Counter(h.status for h in cluster.proxy.hits)) <= {200, 201, 204}
    assert s3.leftovers() == []


def test_instance_killed_mid_patch(cluster: Cluster, s3: S3Target) -> None:
    assert cluster.proxy is not None
    cluster.proxy.hits.clear()
    data = os.urandom(20 * MiB + 7)
    killed: list[int] = []

    def hook(instance: int, sent: int) -> None:
        if not killed and sent >= 12 * MiB:
            killed.append(instance)
            cluster.gateways[instance].kill()

    cluster.proxy.body_hook = hook
    try:
        url = tus_upload(cluster.files_url, data, chunk_size=len(data), delay=0.5)
    finally:
        cluster.proxy.body_hook = None
        cluster.revive()
    assert killed
    assert sha(fetch(url)) == sha(data)
    patches = [h for h in cluster.proxy.hits if h.method == "PATCH"]
    assert patches[0].status == 502 and patches[-1].status == 204
