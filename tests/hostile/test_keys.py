"""Class 5 of issue 15: the URL returned for an object addresses exactly that
object (every segment percent-encoded), and keys that cannot be stored and
served are refused at upload with 400 and a reason — through the official
Qiniu SDK's form upload and a raw v2 init (v1 mkfile and v2 complete name
their key through the same ``placing.check_key``)."""

from __future__ import annotations

import base64
import hashlib
import os
import time

import pytest
import qiniu
import requests

from backends.urls import key_path
from gateway.keys import NOT_UTF8, key_problem
from tests.hostile.fuzzing import Request, send
from tests.qiniu.harness import PREFIX, region, token
from testservers.gateway import GatewayProcess

REFUSED = {
    "dot-dot": "x/../victim",
    "dot": "x/./victim",
    "newline": "a\nb",
    "nul": "a\x00b",
    "c1-control": "a\x85b",
    "too-long": "k" * (1025 - len(PREFIX)),
    "deep": "/" * 1000 + "x",
}
SERVABLE = [
    "plain.txt",
    "with space/and?query#frag",
    "percent%2E%2E/%2F/100%",
    "ünïcødé/文件.bin",
    "a//b/",
    "/leading",
    "...",
    "semi;colon&amp=x+y",
    "k" * (1024 - len(PREFIX)),
]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_key_rules() -> None:
    for key in REFUSED.values():
        assert key_problem(key, PREFIX) is not None, key
    for key in SERVABLE:
        assert key_problem(key, PREFIX) is None, key
    assert key_path("a/../b/./c d") == "a/%2E%2E/b/%2E/c%20d"


@pytest.mark.parametrize("name", list(REFUSED))
def test_unservable_keys_are_refused_by_every_upload_path(hgw: GatewayProcess, name: str) -> None:
    key = REFUSED[name]
    victim = os.urandom(1000)
    _, info = qiniu.put_data(token(), f"victim-{name}", victim, regions=[region(hgw)])
    assert info.status_code == 200, info
    started = time.monotonic()
    log_before = len(hgw.log())
    _, info = qiniu.put_data(token(), key, b"attacker", regions=[region(hgw)])
    assert info.status_code == 400, info
    assert "invalid key" in info.error
    r = requests.post(
        f"{hgw.url}/buckets/photos/objects/{base64.urlsafe_b64encode(key.encode()).decode()}/uploads",
        headers={"Authorization": f"UpToken {token()}"},
        timeout=30,
    )
    assert r.status_code == 400 and "invalid key" in r.json()["error"], r.text
    assert time.monotonic() - started < 10
    assert len(hgw.log()) - log_before < 2000  # no traceback storm (RecursionError)
    got = requests.get(f"{hgw.url}/objects/photos/victim-{name}", timeout=30)
    assert got.status_code == 200 and _sha(got.content) == _sha(victim)


@pytest.mark.parametrize("key", SERVABLE)
def test_the_url_of_an_object_serves_exactly_that_object(hgw: GatewayProcess, key: str) -> None:
    data = os.urandom(2048)
    ret, info = qiniu.put_data(token(), key, data, regions=[region(hgw)])
    assert info.status_code == 200, info
    assert ret["key"] == key
    got = requests.get(ret["url"], timeout=30)
    assert got.status_code == 200, (ret["url"], got.status_code)
    assert _sha(got.content) == _sha(data)


@pytest.mark.parametrize("fname", ["..", "a\nb", "nul\x00", "x" * 1100])
def test_tus_refuses_a_save_key_no_url_can_serve(hgw: GatewayProcess, fname: str) -> None:
    """A tus upload under a credential whose saveKey names the key from the
    client's file name: an unservable result is 400, nothing is created."""
    upload_token = token(bucket="default", saveKey="u/$(fname)")
    metadata = "filename " + base64.b64encode(fname.encode()).decode()
    r = requests.post(
        hgw.files_url,
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "3",
            "Upload-Metadata": metadata,
            "Authorization": f"UpToken {upload_token}",
        },
        timeout=30,
    )
    assert r.status_code == 400, (r.status_code, r.text)
    assert "invalid key" in r.text
    fine = f"fine-{hashlib.sha256(fname.encode()).hexdigest()[:8]}.txt"
    good = "filename " + base64.b64encode(fine.encode()).decode()
    r = requests.post(
        hgw.files_url,
        data=b"abc",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "3",
            "Upload-Metadata": good,
            "Authorization": f"UpToken {upload_token}",
            "Content-Type": "application/offset+octet-stream",
        },
        timeout=30,
    )
    assert r.status_code == 201, r.text
    assert requests.get(r.headers["X-Object-Url"], timeout=30).content == b"abc"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_object_path_that_is_not_utf8_is_400(hgw: GatewayProcess, method: str) -> None:
    """Raw bytes that are not UTF-8 in an object URL name no object: 400 with
    the reason on every store (S3's client could not even encode the key)."""
    for target in [b"/objects/photos/\xed\xa0\x80", b"/objects/photos/a/\xff.bin"]:
        reply = send(hgw.port, Request(method, target))
        assert reply.status == 400, (target, reply.raw[:300])
        if method == "GET":
            assert reply.body.strip() == NOT_UTF8.encode()
    # a key that could exist but does not is still 404
    assert requests.get(f"{hgw.url}/objects/photos/n%C3%B6ne", timeout=30).status_code == 404
