"""The IETF protocol under access control, as tus on the same path: a
credential to create, the put policy's limits, uploads answering only their
owner, and Qiniu's records out of reach."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from qiniu.utils import etag_stream

from tests.access.support import access_config, auth, bearer, uptoken
from tests.ietf.helpers import PARTIAL, append, create, fields
from tests.ietf.raw import request
from tests.support.targets import Target
from testservers.gateway import GatewayProcess


@pytest.fixture(scope="module")
def agw(target: Target) -> Iterator[GatewayProcess]:
    with GatewayProcess(access_config(target)) as gw:
        yield gw


def test_creation_needs_a_credential(agw: GatewayProcess) -> None:
    ex = create(agw.files_url, 6, b"abc", complete=True)
    assert ex.status == 401
    assert ex.interim == []  # refused before anything was created
    assert "UpToken" in ex.headers["www-authenticate"]
    assert ex.headers["content-type"].startswith("application/problem+json")
    ex = create(agw.files_url, 6, b"abc", complete=True, **_auth(uptoken("other")))
    assert ex.status == 403


def test_an_upload_answers_only_its_owner(agw: GatewayProcess) -> None:
    alice = uptoken(endUser="alice", saveKey="ietf/$(endUser)/$(fname)")
    ex = create(
        agw.files_url,
        8,
        b"01234",
        complete=False,
        Content_Disposition='inline; filename="a.bin"',
        **_auth(alice),
    )
    assert ex.status == 201
    url = ex.headers["location"]
    bob = uptoken(endUser="bob")
    for token in (None, bob, bearer({"scope": "default"}, sub="bob")):
        extra = _auth(token) if token else {}
        assert request("HEAD", url, fields(8, **extra)).status == 404
        assert append(url, 8, 5, b"56789", complete=True, **extra).status == 404
        assert request("DELETE", url, fields(8, **extra)).status == 404
    assert request("HEAD", url, fields(8, **_auth(alice))).status == 204
    r = append(url, 8, 5, b"56789", complete=True, **_auth(alice))
    assert r.status == 200
    assert "/ietf/alice/a.bin" in r.headers["x-object-url"]  # the policy's saveKey
    got = requests.get(url, headers=auth(alice), timeout=30)
    assert got.content == b"0123456789"


def test_a_key_named_by_its_qetag(agw: GatewayProcess) -> None:
    """saveKey with $(etag): the key is decided when the upload completes."""
    token = uptoken(saveKey="ietf-etag/$(etag)")
    url = create(agw.files_url, 8, b"01234", complete=False, **_auth(token)).headers["location"]
    assert "x-object-url" not in request("HEAD", url, fields(8, **_auth(token))).headers
    r = append(url, 8, 5, b"56789", complete=True, **_auth(token))
    assert r.status == 200
    path = urlsplit(r.headers["x-object-url"]).path  # the gateway's or the store's URL
    assert path.endswith("/ietf-etag/" + etag_stream(io.BytesIO(b"0123456789")))


def test_policy_limits_apply(agw: GatewayProcess) -> None:
    limited = uptoken(fsizeLimit=100)
    ex = create(agw.files_url, 7, b"x" * 101, complete=True, **_auth(limited))
    assert ex.status == 413
    url = create(agw.files_url, 7, complete=False, **_auth(limited)).headers["location"]
    assert append(url, 7, 0, b"x" * 101, complete=False, **_auth(limited)).status == 413
    # content without a length stops at the limit, keeping what fits
    h = fields(7, False, Upload_Offset="0", Content_Type=PARTIAL, **_auth(limited))
    assert request("PATCH", url, h, b"y" * 150, chunked=True).status == 413
    assert 0 <= offset_of_owned(url, limited) <= 100
    ex = request("POST", agw.files_url, fields(7, True, **_auth(limited)), b"z" * 150, chunked=True)
    assert ex.status == 413
    images = uptoken(mimeLimit="image/*")
    ex = create(agw.files_url, 7, b"<p>", complete=True, Content_Type="text/html", **_auth(images))
    assert ex.status == 415


def test_qiniu_records_are_not_the_paths(agw: GatewayProcess) -> None:
    token = uptoken()
    obj = base64.urlsafe_b64encode(b"ietf-qiniu").decode()
    base = f"{agw.url}/buckets/default/objects/{obj}/uploads"
    upload_id = requests.post(base, headers=auth(token), timeout=30).json()["uploadId"]
    url = agw.files_url + upload_id
    assert request("HEAD", url, fields(8, **_auth(token))).status == 404
    assert request("DELETE", url, fields(8, **_auth(token))).status == 404


def offset_of_owned(url: str, token: str) -> int:
    r = request("HEAD", url, fields(8, **_auth(token)))
    assert r.status == 204
    return int(r.headers["upload-offset"])


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": auth(token)["Authorization"]}


def test_mime_limit_on_the_first_bytes(agw: GatewayProcess) -> None:
    """The creator's mimeLimit judges the first bytes before the store gets
    them, in the creation's content or the first append (415, nothing kept)."""
    images = uptoken(mimeLimit="image/*")
    page = b"<!DOCTYPE html><html><body>hello</body></html>"
    ex = create(agw.files_url, 8, page, complete=True, **_auth(images))
    assert ex.status == 415, ex.body
    ex = create(agw.files_url, 8, b"", complete=False, **_auth(images))
    assert ex.status == 201
    url = ex.headers["location"]
    assert append(url, 8, 0, page, complete=True, **_auth(images)).status == 415
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    r = append(url, 8, 0, png, complete=True, **_auth(images))
    assert r.status == 200
    assert requests.get(url, headers=auth(images), timeout=30).content == png
