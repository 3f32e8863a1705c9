"""tus under access control: credentials on every request, the policy
deciding size, type and key, uploads belonging to their creator — with
tuspy (and raw requests for the refusals), on every backend target."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from tusclient import client as tus

from gateway.core.records import UploadRecord
from tests.access.support import auth, bearer, tus_create, uptoken
from tests.support.cutproxy import CutProxy
from tests.support.targets import Target
from tests.tus.helpers import OCTET, TUS
from testservers.gateway import GatewayProcess

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "photo.jpg"
    path.write_bytes(os.urandom(5 * MiB + 321))
    return path


def _md(**items: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


def _get(url: str, token: str | None = None) -> requests.Response:
    return requests.get(url, headers=auth(token) if token else {}, timeout=60)


def _head(url: str, token: str | None = None) -> requests.Response:
    return requests.head(url, headers={**TUS, **(auth(token) if token else {})}, timeout=30)


@pytest.mark.parametrize("kind", ["uptoken", "jwt"])
def test_tuspy_creates_resumes_and_finishes_with_a_credential(
    agw: GatewayProcess, source: Path, kind: str
) -> None:
    token = (
        uptoken(endUser="alice", saveKey="u/$(endUser)/$(fname)")
        if kind == "uptoken"
        else bearer({"scope": "default", "saveKey": "u/$(endUser)/$(fname)"}, sub="alice")
    )
    with CutProxy(agw.port) as proxy:
        client = tus.TusClient(proxy.url + "/files/", headers=auth(token))
        uploader = client.uploader(
            str(source),
            chunk_size=2 * MiB,
            retries=3,
            retry_delay=0.2,
            metadata={"filename": f"{kind}.jpg"},
        )
        uploader.set_url(uploader.create_url())
        proxy.cut_next_after(MiB)  # inside the first PATCH body
        uploader.upload()
        assert proxy.cuts == 1
    url = uploader.url.replace(proxy.url, agw.url)
    r = _get(url, token)
    assert r.status_code == 200, r.text
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(source.read_bytes()).digest()
    # the key came from saveKey with magic variables from the credential and tus metadata
    object_url = _head(url, token).headers["X-Object-Url"]
    assert urlsplit(object_url).path.endswith(f"/u/alice/{kind}.jpg")


def test_creation_needs_a_credential_here(agw: GatewayProcess) -> None:
    r = tus_create(agw.files_url, 5, None)
    assert r.status_code == 401
    assert "UpToken" in r.headers["WWW-Authenticate"]
    forged = uptoken()[:-4] + "AAAA"
    assert tus_create(agw.files_url, 5, forged).status_code == 401
    expired = uptoken(expires=-10)
    r = tus_create(agw.files_url, 5, expired)
    assert (r.status_code, r.text.strip()) == (401, "expired token")
    assert tus_create(agw.files_url, 5, uptoken("other")).status_code == 403


def test_an_upload_answers_only_its_owner(agw: GatewayProcess) -> None:
    alice = uptoken(endUser="alice")
    r = tus_create(agw.files_url, 10, alice)
    assert r.status_code == 201, r.text
    url = r.headers["Location"]
    assert _head(url, alice).status_code == 200
    bob = uptoken(endUser="bob")
    other_bucket = uptoken("other", endUser="alice")
    for token in (None, bob, other_bucket, bearer({"scope": "default"}, sub="bob")):
        assert _head(url, token).status_code == 404
        headers = {**TUS, **OCTET, "Upload-Offset": "0", **(auth(token) if token else {})}
        assert requests.patch(url, data=b"x" * 10, headers=headers, timeout=30).status_code == 404
        assert _get(url, token).status_code == 404
        headers = {**TUS, **(auth(token) if token else {})}
        assert requests.delete(url, headers=headers, timeout=30).status_code == 404
    # the same user with another credential form (a JWT whose sub is alice) may go on
    jwt_alice = bearer({"scope": "default"}, sub="alice")
    headers = {**TUS, **OCTET, "Upload-Offset": "0", **auth(jwt_alice)}
    assert requests.patch(url, data=b"0123456789", headers=headers, timeout=30).status_code == 204
    assert _get(url, alice).content == b"0123456789"
    # an expired credential of the owner works for nothing
    assert _head(url, uptoken(endUser="alice", expires=-5)).status_code == 401


def test_policy_limits_apply_to_tus(agw: GatewayProcess) -> None:
    limited = uptoken(fsizeLimit=100, fsizeMin=10)
    assert tus_create(agw.files_url, 101, limited).status_code == 413
    assert tus_create(agw.files_url, 9, limited).status_code == 403
    assert tus_create(agw.files_url, 100, limited).status_code == 201
    # a deferred length is checked as the bytes and the length arrive
    r = requests.post(
        agw.files_url, headers={**TUS, "Upload-Defer-Length": "1", **auth(limited)}, timeout=30
    )
    url = r.headers["Location"]
    headers = {**TUS, **OCTET, "Upload-Offset": "0", **auth(limited)}
    assert requests.patch(url, data=b"x" * 101, headers=headers, timeout=30).status_code == 413
    # a chunked body (no Content-Length) stops at the limit
    r = requests.patch(url, data=iter([b"y" * 60, b"y" * 60]), headers=headers, timeout=30)
    assert r.status_code == 413, r.text
    assert 0 <= int(_head(url, limited).headers["Upload-Offset"]) <= 100
    images = uptoken(mimeLimit="image/*")  # more in test_finish_rules.py
    assert tus_create(agw.files_url, 5, images, _md(filetype="text/html")).status_code == 415
    assert tus_create(agw.files_url, 5, images, _md(filetype="image/png")).status_code == 201
    assert tus_create(agw.files_url, 0, images).status_code == 415  # no bytes will show it


def test_scope_key_and_insert_only(agw: GatewayProcess) -> None:
    key = f"fixed/{os.urandom(4).hex()}.bin"
    token = uptoken(key=key)
    r = tus_create(agw.files_url, 3, token)
    assert r.status_code == 201
    url = r.headers["Location"]
    headers = {**TUS, **OCTET, "Upload-Offset": "0", **auth(token)}
    r = requests.patch(url, data=b"abc", headers=headers, timeout=30)
    assert r.status_code == 204
    assert urlsplit(r.headers["X-Object-Url"]).path.endswith("/" + key)
    # bucket:key without insertOnly may replace; with insertOnly it may not
    assert tus_create(agw.files_url, 3, token).status_code == 201
    r = tus_create(agw.files_url, 3, uptoken(key=key, insertOnly=1))
    assert (r.status_code, r.text.strip()) == (403, "file exists")
    # a saveKey outside a key scope is refused
    r = tus_create(agw.files_url, 3, uptoken(key="a", saveKey="b", forceSaveKey=True))
    assert r.status_code == 403
    # $(key) cannot be known when a tus upload is created ($(etag): test_tus_etag_key.py)
    r = tus_create(agw.files_url, 3, uptoken(saveKey="k/$(key)"))
    assert r.status_code == 400 and "$(key)" in r.text
    # nor can a Qiniu callback answer a tus client: refused, not ignored
    r = tus_create(agw.files_url, 3, uptoken(callbackUrl="http://127.0.0.1:9/cb"))
    assert r.status_code == 400 and "callbackUrl" in r.text
    # a prefixal scope puts the upload under its prefix
    r = tus_create(agw.files_url, 0, uptoken(key="pre/", isPrefixalScope=1))
    assert r.status_code == 201
    assert "/pre/" in urlsplit(r.headers["X-Object-Url"]).path


def test_concatenation_takes_only_the_callers_partials(agw: GatewayProcess) -> None:
    alice, bob = uptoken(endUser="alice"), uptoken(endUser="bob")
    r = requests.post(
        agw.files_url,
        headers={**TUS, "Upload-Length": "3", "Upload-Concat": "partial", **auth(alice)},
        timeout=30,
    )
    part = r.headers["Location"]
    headers = {**TUS, **OCTET, "Upload-Offset": "0", **auth(alice)}
    assert requests.patch(part, data=b"abc", headers=headers, timeout=30).status_code == 204
    final = {**TUS, "Upload-Concat": f"final;{part}"}
    r = requests.post(agw.files_url, headers={**final, **auth(bob)}, timeout=30)
    assert r.status_code == 404
    r = requests.post(agw.files_url, headers={**final, **auth(alice)}, timeout=30)
    assert r.status_code == 201
    assert _get(r.headers["Location"], alice).content == b"abc"


def test_delete_after_days_on_tus(agw: GatewayProcess, target: Target) -> None:
    """The policy's deleteAfterDays gives a tus object its lifetime (the
    finished record expires then and the sweeper deletes it; Swift's store
    does it itself)."""
    token = uptoken(deleteAfterDays=2)
    started = time.time()
    r = tus_create(agw.files_url, 3, token)
    headers = {**TUS, **OCTET, "Upload-Offset": "0", **auth(token)}
    r = requests.patch(r.headers["Location"], data=b"abc", headers=headers, timeout=30)
    assert r.status_code == 204
    upload_id = r.url.rsplit("/", 1)[1]
    with sqlite3.connect(agw.workdir / "state.db") as db:
        [row] = db.execute("SELECT data FROM uploads WHERE id = ?", (upload_id,)).fetchall()
    record = UploadRecord.from_json(row[0])
    if target.name == "swift":
        return
    assert record.expires_at is not None
    assert started + 2 * 86400 - 5 <= record.expires_at <= time.time() + 2 * 86400 + 5
