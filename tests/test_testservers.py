"""Smoke tests: each launcher starts, answers, restarts on the same port, stops."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import pytest
import redis as redis_py
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from testservers.ceph import CephServer
from testservers.moto import MotoServer
from testservers.ports import port_open
from testservers.redis import RedisServer
from testservers.swift import SwiftServer

NO_PROXY = {"http": "", "https": ""}


def _gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True


def _s3(endpoint: str, key: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}
        ),
    )


def _tamper(url: str, param: str) -> str:
    """Flip the last hex digit of a query parameter."""
    parts = urlsplit(url)
    q = parse_qsl(parts.query)
    q = [(k, v[:-1] + ("0" if v[-1] != "0" else "1")) if k == param else (k, v) for k, v in q]
    return urlunsplit(parts._replace(query=urlencode(q)))


@pytest.fixture(scope="module")
def swift() -> Iterator[SwiftServer]:
    with SwiftServer() as s:
        yield s


def test_swift_native_api_and_tempurl(swift: SwiftServer) -> None:
    token = swift.auth_token()
    h = {"X-Auth-Token": token}
    base = swift.storage_url
    assert requests.put(f"{base}/c1", headers=h, proxies=NO_PROXY).status_code in (201, 202)
    r = requests.put(f"{base}/c1/hello.txt", data=b"hello swift", headers=h, proxies=NO_PROXY)
    assert r.status_code == 201
    r = requests.get(f"{base}/c1/hello.txt", headers=h, proxies=NO_PROXY)
    assert r.status_code == 200 and r.content == b"hello swift"

    # tempurl: valid signature works, tampered one is refused.
    r = requests.post(
        base, headers={**h, "X-Account-Meta-Temp-URL-Key": "sekrit"}, proxies=NO_PROXY
    )
    assert r.status_code == 204
    path = f"/v1/{swift.account}/c1/hello.txt"
    expires = int(time.time()) + 60
    sig = hmac.new(b"sekrit", f"GET\n{expires}\n{path}".encode(), hashlib.sha256).hexdigest()
    url = f"{swift.endpoint}{path}?temp_url_sig={sig}&temp_url_expires={expires}"
    assert requests.get(url, proxies=NO_PROXY).content == b"hello swift"
    assert requests.get(_tamper(url, "temp_url_sig"), proxies=NO_PROXY).status_code == 401


def test_swift_s3api_checks_signatures(swift: SwiftServer) -> None:
    s3 = _s3(swift.s3_endpoint, swift.access_key, swift.secret_key)
    s3.create_bucket(Bucket="bucket1")
    s3.put_object(Bucket="bucket1", Key="k", Body=b"hello s3")
    assert s3.get_object(Bucket="bucket1", Key="k")["Body"].read() == b"hello s3"

    bad = _s3(swift.s3_endpoint, swift.access_key, "wrong-secret")
    with pytest.raises(ClientError) as err:
        bad.get_object(Bucket="bucket1", Key="k")
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"

    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "bucket1", "Key": "k"}, ExpiresIn=60
    )
    assert requests.get(url, proxies=NO_PROXY).content == b"hello s3"
    assert requests.get(_tamper(url, "X-Amz-Signature"), proxies=NO_PROXY).status_code == 403
    short = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "bucket1", "Key": "k"}, ExpiresIn=1
    )
    time.sleep(2.1)
    assert requests.get(short, proxies=NO_PROXY).status_code == 403


def test_swift_restart_keeps_ports_and_data(swift: SwiftServer) -> None:
    s3 = _s3(swift.s3_endpoint, swift.access_key, swift.secret_key)
    s3.create_bucket(Bucket="bucket2")
    s3.put_object(Bucket="bucket2", Key="k", Body=b"kept")
    port, pids = swift.proxy_port, swift.pids
    swift.stop()
    assert _gone(pids) and not swift.running and not port_open(port)
    swift.start()
    assert swift.proxy_port == port and swift.running
    assert s3.get_object(Bucket="bucket2", Key="k")["Body"].read() == b"kept"


def test_swift_close_removes_everything() -> None:
    s = SwiftServer()
    s.start()
    pids, d = s.pids, s.directory
    assert len(pids) == 5
    s.close()
    assert _gone(pids) and not d.exists()


def test_moto() -> None:
    with MotoServer(min_part_size=1024) as m:
        s3 = _s3(m.endpoint_url, m.access_key, m.secret_key)
        s3.create_bucket(Bucket="bkt")
        s3.put_object(Bucket="bkt", Key="k", Body=b"hello moto")
        assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == b"hello moto"
        port, pids = m.port, m.pids
        m.restart()  # same port, state lost
        assert m.port == port and _gone(pids)
        assert "Buckets" not in s3.list_buckets() or s3.list_buckets()["Buckets"] == []
    assert _gone(m.pids + pids) and not port_open(port)


def test_redis() -> None:
    with RedisServer() as r:
        client = redis_py.Redis.from_url(r.url)
        assert client.ping()
        client.set("k", "v")
        port, pids = r.port, r.pids
        r.restart()  # same port, data kept (AOF)
        assert r.port == port and _gone(pids)
        assert redis_py.Redis.from_url(r.url).get("k") == b"v"
        r.pause()  # hung server: connections accepted by the kernel, no answer
        with pytest.raises(redis_py.exceptions.TimeoutError):
            redis_py.Redis.from_url(r.url, socket_timeout=0.3).ping()
        r.resume()
        assert redis_py.Redis.from_url(r.url).ping()
        pids = r.pids
        client.close()
    assert _gone(pids) and not port_open(port)


def test_ceph_rgw_checks_signatures_and_digests() -> None:
    """One mon, one memstore OSD, radosgw: a real S3 API that checks signatures
    and Content-MD5; close() stops the three processes and removes the folder."""
    ceph = CephServer().start()
    pids, d = ceph.pids, ceph.directory
    try:
        assert len(pids) == 3
        s3 = _s3(ceph.endpoint_url, ceph.access_key, ceph.secret_key)
        s3.create_bucket(Bucket="bucket1")
        s3.put_object(Bucket="bucket1", Key="k", Body=b"hello ceph")
        assert s3.get_object(Bucket="bucket1", Key="k")["Body"].read() == b"hello ceph"
        with pytest.raises(ClientError) as err:
            s3.put_object(Bucket="bucket1", Key="k2", Body=b"x", ContentMD5="A" * 22 + "==")
        assert err.value.response["Error"]["Code"] == "BadDigest"
        bad = _s3(ceph.endpoint_url, ceph.access_key, "wrong-secret")
        with pytest.raises(ClientError) as err:
            bad.get_object(Bucket="bucket1", Key="k")
        assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    finally:
        ceph.close()
    assert _gone(pids) and not d.exists()
