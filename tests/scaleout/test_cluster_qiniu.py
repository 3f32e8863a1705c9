"""The official Qiniu SDK (form, v1, v2) through random instances of a
three-instance cluster: every request of an upload may land anywhere (on
the local store, and on S3 where v2 parts go into the object's upload);
the SHA-256 recorded for the object is that of its bytes, however its
parts' chain was broken between instances."""

from __future__ import annotations

import hashlib
import io
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qiniu
import redis as redis_py
import requests
from qiniu import Region, UploadProgressRecorder

from gateway.core.digests import SHA256
from gateway.core.records import Status, UploadRecord
from tests.conftest import get_target
from tests.scaleout.cluster import QINIU_AK, QINIU_BUCKET, QINIU_SK, Cluster
from tests.scaleout.proxy import RandomProxy
from tests.support.targets import selected_targets
from testservers.redis import RedisServer

MiB = 1024 * 1024
AUTH = qiniu.Auth(QINIU_AK, QINIU_SK)


@pytest.fixture(
    scope="module", params=["local", *(["s3-moto"] if "s3-moto" in selected_targets() else [])]
)
def proxy(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[RandomProxy]:
    with redis_py.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    backend = None if request.param == "local" else get_target(request.param).backend_config()
    cluster = Cluster(redis_server.url, backend=backend).start()
    try:
        assert cluster.proxy is not None
        yield cluster.proxy
    finally:
        cluster.stop()


@pytest.fixture
def recorder(tmp_path: Path) -> UploadProgressRecorder:
    return UploadProgressRecorder(str(tmp_path))


def _token(key: str) -> str:
    return str(AUTH.upload_token(QINIU_BUCKET, key, 3600))


def _region(proxy: RandomProxy) -> Region:
    return Region(up_host=proxy.url, up_host_backup=proxy.url, scheme="http")


def _ok(ret: Any, info: Any) -> dict[str, Any]:
    assert info.status_code == 200, info
    assert isinstance(ret, dict), info
    return ret


def _stored(proxy: RandomProxy, key: str) -> str:
    r = requests.get(f"{proxy.url}/objects/{QINIU_BUCKET}/{key}", timeout=60)
    assert r.status_code == 200, (r.status_code, r.text)
    return hashlib.sha256(r.content).hexdigest()


def _recorded_sha256(redis_server: RedisServer, key: str) -> str:
    """The SHA-256 recorded for the finished object ``key`` (shared state)."""
    with redis_py.Redis.from_url(redis_server.url) as client:
        rows = [client.hget(name, "data") for name in client.scan_iter(match="*upload:*")]
    records = [UploadRecord.from_json(r) for r in rows if r is not None]
    [found] = [
        r
        for r in records
        if r.bucket == QINIU_BUCKET and r.key == key and r.status is Status.FINISHED
    ]
    return str(found.extra[SHA256])


def test_form_uploads(proxy: RandomProxy) -> None:
    for i in range(12):
        data = os.urandom(1 + i * 50_000)
        key = f"form/{i}.bin"
        ret = _ok(*qiniu.put_data(_token(key), key, data, regions=[_region(proxy)]))
        assert ret["hash"] == qiniu.utils.etag_stream(io.BytesIO(data))
        assert _stored(proxy, key) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("version", "part_size"), [("v1", None), ("v2", 4 * MiB), ("v2", 1 * MiB)])
def test_resumable_uploads(
    proxy: RandomProxy,
    redis_server: RedisServer,
    tmp_path: Path,
    recorder: UploadProgressRecorder,
    version: str,
    part_size: int | None,
) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(13 * MiB + 4321))
    key = f"{version}-{part_size}/big.bin"
    proxy.hits.clear()
    extra = {"part_size": part_size} if part_size else {}
    ret = _ok(
        *qiniu.put_file_v2(
            _token(key),
            key,
            str(path),
            regions=[_region(proxy)],
            upload_progress_recorder=recorder,
            version=version,
            **extra,
        )
    )
    if part_size in (None, 4 * MiB):
        assert ret["hash"] == qiniu.etag(str(path))
    assert _stored(proxy, key) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert _recorded_sha256(redis_server, key) == hashlib.sha256(path.read_bytes()).hexdigest()
    statuses = Counter(h.status for h in proxy.hits)
    assert set(statuses) == {200}, [(h.method, h.path, h.status, h.body) for h in proxy.hits]
    assert len({h.instance for h in proxy.hits}) >= 2  # the upload really was spread
