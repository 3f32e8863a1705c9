"""Object URLs for business services: presigned (checked by Swift's s3api:
tampered or expired URLs are refused), public, or the gateway's own."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests

from tests.s3.conftest import S3Gateway
from tests.support.targets import S3Target
from tests.tus.helpers import TUS, create

OBJECT_URL = "X-Object-Url"
NO_PROXY = {"http": "", "https": ""}


def _upload(gw: S3Gateway, data: bytes) -> requests.Response:
    url = create(gw.process.files_url, len(data))
    h = {**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    r = requests.patch(url, data=data, headers=h, timeout=60)
    assert r.status_code == 204, r.text
    return r


def _fetch(url: str) -> requests.Response:
    return requests.get(url, timeout=30, proxies=NO_PROXY)


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture(scope="module")
def presigning(s3_target: S3Target) -> Iterator[S3Gateway]:
    with S3Gateway(s3_target, {"url": {"mode": "presigned"}}) as gw:
        yield gw


def test_presigned_url_downloads_identical_bytes(presigning: S3Gateway) -> None:
    data = os.urandom(6 * 1024 * 1024 + 11)
    url = _upload(presigning, data).headers[OBJECT_URL]
    assert "X-Amz-Signature=" in url
    r = _fetch(url)
    assert r.status_code == 200
    assert r.content == data


def test_tampered_or_expired_presigned_url_is_refused(swift_target: S3Target) -> None:
    with S3Gateway(swift_target, {"url": {"mode": "presigned", "ttl": "2s"}}) as gw:
        data = os.urandom(1000)
        url = _upload(gw, data).headers[OBJECT_URL]
        signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
        forged = ("0" if signature[0] != "0" else "1") + signature[1:]
        assert _fetch(_with_query(url, **{"X-Amz-Signature": forged})).status_code == 403
        longer = _with_query(url, **{"X-Amz-Expires": "3600"})
        assert _fetch(longer).status_code == 403  # the signature covers the expiry
        other = create(gw.process.files_url, 0).rsplit("/", 1)[1]
        assert _fetch(url.replace(urlsplit(url).path, f"/{gw.bucket}/{other}")).status_code == 403
        assert _fetch(url).content == data
        time.sleep(3)
        assert _fetch(url).status_code == 403


def test_gateway_urls_by_default(s3_gateway: S3Gateway) -> None:
    data = os.urandom(100)
    url = _upload(s3_gateway, data).headers[OBJECT_URL]
    assert url.startswith(s3_gateway.process.url + "/objects/default/")
    assert _fetch(url).content == data


def test_public_urls(s3_target: S3Target) -> None:
    public = {"url": {"mode": "public", "base_url": "https://cdn.example/media/"}}
    with S3Gateway(s3_target, public) as gw:
        url = _upload(gw, b"x").headers[OBJECT_URL]
        key = url.rsplit("/", 1)[1]
        assert url == f"https://cdn.example/media/{key}"
