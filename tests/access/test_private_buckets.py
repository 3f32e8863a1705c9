"""Private buckets: objects served only with Qiniu private-download URLs —
signed by the qiniu SDK's ``private_download_url`` as a business service
would — expired or tampered ones refused with 401; the URLs the gateway
hands out for a private bucket are signed already."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import qiniu
import requests

from tests.access.hook_server import SECRET, HookServer
from tests.access.support import AK, SK, auth, tus_create, uptoken
from tests.conftest import gateway_config
from tests.support.targets import Target
from tests.tus.helpers import OCTET, TUS
from testservers.gateway import GatewayProcess

SDK = qiniu.Auth(AK, SK)


@pytest.fixture(scope="module")
def pgw(target: Target, hooks: HookServer) -> Iterator[GatewayProcess]:
    config = gateway_config(
        target,
        buckets={"default": {"backend": "default", "private": True}},
        qiniu={"enabled": True, "keys": [{"access_key": AK, "secret_key": SK}]},
        hooks=[{"url": hooks.url, "events": ["post-finish"], "secret": SECRET}],
    )
    with GatewayProcess(config) as gw:
        yield gw


def _upload(gw: GatewayProcess, data: bytes, key: str) -> tuple[str, str]:
    """(upload URL, X-Object-Url) of a finished tus upload at ``key``."""
    token = uptoken(key=key)
    r = tus_create(gw.files_url, len(data), token)
    assert r.status_code == 201, r.text
    url = r.headers["Location"]
    headers = {**TUS, **OCTET, "Upload-Offset": "0", **auth(token)}
    r = requests.patch(url, data=data, headers=headers, timeout=60)
    assert r.status_code == 204, r.text
    return url, r.headers["X-Object-Url"]


def test_sdk_signed_url_downloads_and_unsigned_is_refused(pgw: GatewayProcess) -> None:
    data = os.urandom(300_000)
    key = f"private/{os.urandom(4).hex()}.bin"
    upload_url, _ = _upload(pgw, data, key)
    plain = f"{pgw.url}/objects/default/{key}"
    r = requests.get(plain, timeout=30)
    assert r.status_code == 401
    signed = SDK.private_download_url(plain, expires=60)
    r = requests.get(signed, timeout=30)
    assert r.status_code == 200
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(data).digest()
    r = requests.get(signed, headers={"Range": "bytes=10-19"}, timeout=30)
    assert (r.status_code, r.content) == (206, data[10:20])
    # a missing object answers 401 unsigned as well: existence is not revealed
    assert requests.get(plain + ".missing", timeout=30).status_code == 401
    # tus GET on the upload URL follows the same rule
    assert requests.get(upload_url, timeout=30).status_code == 401
    r = requests.get(SDK.private_download_url(upload_url, expires=60), timeout=30)
    assert r.status_code == 200 and r.content == data


def test_expired_and_tampered_urls_are_refused(pgw: GatewayProcess) -> None:
    key = f"private/{os.urandom(4).hex()}.txt"
    _upload(pgw, b"secret bytes", key)
    plain = f"{pgw.url}/objects/default/{key}"
    expired = SDK.private_download_url(plain, expires=-5)
    r = requests.get(expired, timeout=30)
    assert r.status_code == 401 and "expired" in r.text
    good = SDK.private_download_url(plain, expires=60)
    later = good.replace("?e=", f"?e={int(time.time()) + 99999}&x=")  # deadline moved
    other_key = good.replace(key, key + "x")  # another object with this signature
    forged = good[: good.rindex(":") + 1] + "AAAA" + good[good.rindex(":") + 5 :]
    wrong_ak = good.replace(f"token={AK}:", "token=someone:")
    for url in (later, other_key, forged, wrong_ak):
        assert requests.get(url, timeout=30).status_code == 401, url
    assert requests.get(good, timeout=30).content == b"secret bytes"


def test_a_key_signed_as_plain_text_or_percent_encoded(pgw: GatewayProcess) -> None:
    """A service may sign ``f"{domain}/{key}"`` with the key as plain text
    (the Python SDK's example) or percent-encoded (the Java and Go SDKs', the
    gateway's own URLs); the client sends it encoded either way."""
    key = f"private/{os.urandom(3).hex()} 照片 #1.txt"
    _upload(pgw, b"plain or encoded", key)
    for spelled in (key, quote(key)):
        url = SDK.private_download_url(f"{pgw.url}/objects/default/{spelled}", expires=60)
        # a "#" in a plain key would end the URL's path: encode that one only
        url = url.replace("#", "%23") if spelled == key else url
        r = requests.get(url, timeout=30)
        assert (r.status_code, r.content) == (200, b"plain or encoded"), (spelled, r.text)
    # the decoded spelling signs that path only
    signed = SDK.private_download_url(f"{pgw.url}/objects/default/{key}", expires=60)
    elsewhere = signed.replace("#", "%23").replace(".txt?e=", ".txtx?e=")
    assert requests.get(elsewhere, timeout=30).status_code == 401


def test_urls_the_gateway_returns_are_signed(
    pgw: GatewayProcess, target: Target, hooks: HookServer
) -> None:
    data = os.urandom(1000)
    key = f"private/{os.urandom(4).hex()}.bin"
    _, object_url = _upload(pgw, data, key)
    deadline = time.time() + 10
    while time.time() < deadline and not [c for c in hooks.calls if c.get("key") == key]:
        time.sleep(0.05)
    [webhook] = [c for c in hooks.calls if c.get("key") == key]
    for url in (object_url, webhook["url"]):
        if url.startswith(pgw.url):  # the gateway serves it (not an S3/Swift URL)
            assert "e=" in url and f"token={AK}:" in url
        r = requests.get(url, timeout=30)
        assert r.status_code == 200 and r.content == data


def test_qiniu_url_of_a_private_object_is_signed(pgw: GatewayProcess) -> None:
    region = qiniu.Region(up_host=pgw.url, up_host_backup=pgw.url, scheme="http")
    key = f"private/{os.urandom(4).hex()}.txt"
    upload_token = SDK.upload_token("default", key, 600, {"returnBody": '{"url":$(url)}'})
    ret, info = qiniu.put_data(upload_token, key, b"qiniu private", regions=[region])
    assert info.status_code == 200, info
    url = ret["url"]
    if url.startswith(pgw.url):  # the gateway serves it (not an S3/Swift URL)
        assert f"token={AK}:" in url
    assert requests.get(url, timeout=30).content == b"qiniu private"
