"""Synchronous hooks with a real hook server (aiohttp): pre-create refuses
(its status and body reach the client), rewrites the key and metadata, sets
a size limit; pre-finish refuses (the object never appears, its bytes are
discarded); a hook that is down answers 503 + Retry-After and no upload is
accepted; every call and every async webhook is signed. On tus (tuspy and
raw requests) and Qiniu (the SDK's v2 upload, form upload)."""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import qiniu
import requests
from qiniu.utils import etag_stream
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError

from tests.access.hook_server import SECRET, HookServer
from tests.access.support import AK, SK, auth, uptoken
from tests.conftest import gateway_config
from tests.support.targets import Target
from tests.tus.helpers import OCTET, TUS
from testservers.gateway import GatewayProcess
from testservers.ports import free_port


def _config(target: Target, url: str) -> dict[str, Any]:
    return gateway_config(
        target,
        buckets={"moved": {"backend": "default", "prefix": "moved/"}},
        qiniu={"enabled": True, "keys": [{"access_key": AK, "secret_key": SK}]},
        hooks=[
            {
                "url": url,
                "events": ["pre-create", "pre-finish", "post-finish"],
                "secret": SECRET,
                "timeout": 5,
            }
        ],
    )


@pytest.fixture(scope="module")
def hgw(target: Target, hooks: HookServer) -> Iterator[GatewayProcess]:
    with GatewayProcess(_config(target, hooks.url)) as gw:
        yield gw


def _md(**items: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


def _create(gw: GatewayProcess, length: int, token: str | None = None, **md: str) -> Any:
    headers = {**TUS, "Upload-Length": str(length), "Upload-Metadata": _md(**md)}
    if token:
        headers.update(auth(token))
    return requests.post(gw.files_url, headers=headers, timeout=30)


def test_pre_create_refusal_reaches_the_client(hgw: GatewayProcess, hooks: HookServer) -> None:
    r = _create(hgw, 5, decide="reject", filename="a.txt")
    assert (r.status_code, r.text.strip()) == (403, "quota exceeded for this user")
    assert hooks.events("pre-create")[-1]["metadata"]["filename"] == "a.txt"


def test_pre_create_rewrites_key_and_metadata(hgw: GatewayProcess, tmp_path: Any) -> None:
    source = tmp_path / "report.pdf"
    source.write_bytes(os.urandom(300_000))
    token = uptoken(endUser="carol")
    uploader = tus.TusClient(hgw.files_url, headers=auth(token)).uploader(
        str(source), chunk_size=100_000, metadata={"filename": "report.pdf", "decide": "rewrite"}
    )
    uploader.upload()
    r = requests.head(uploader.url, headers={**TUS, **auth(token)}, timeout=30)
    assert urlsplit(r.headers["X-Object-Url"]).path.endswith("/rewritten/carol/report.pdf")
    assert r.headers["Upload-Metadata"] == f"approved {base64.b64encode(b'yes').decode()}"
    got = requests.get(r.headers["X-Object-Url"], timeout=30).content
    assert got == source.read_bytes()


def test_pre_create_moves_the_upload_to_another_bucket(hgw: GatewayProcess) -> None:
    token = uptoken(endUser="dave")
    r = _create(hgw, 4, token, decide="bucket:moved")
    assert r.status_code == 201, r.text
    url = r.headers["Location"]
    headers = {**TUS, **OCTET, "Upload-Offset": "0", **auth(token)}
    r = requests.patch(url, data=b"here", headers=headers, timeout=30)
    assert r.status_code == 204, r.text
    object_url = r.headers["X-Object-Url"]
    assert urlsplit(object_url).path.startswith("/objects/moved/") or not object_url.startswith(
        hgw.url
    )
    assert requests.get(object_url, timeout=30).content == b"here"
    key = url.rsplit("/", 1)[1]
    assert requests.get(f"{hgw.url}/objects/moved/{key}", timeout=30).content == b"here"
    assert requests.get(f"{hgw.url}/objects/default/{key}", timeout=30).status_code == 404
    # the creator still reaches the upload; nobody else does
    assert requests.head(url, headers={**TUS, **auth(token)}, timeout=30).status_code == 200
    other = uptoken(endUser="eve")
    assert requests.head(url, headers={**TUS, **auth(other)}, timeout=30).status_code == 404
    # a bucket the gateway does not have: the hook is broken, nothing is accepted
    r = _create(hgw, 4, token, decide="bucket:nowhere")
    assert r.status_code == 503 and r.headers["Retry-After"], r.text


def test_pre_create_size_limit(hgw: GatewayProcess) -> None:
    assert _create(hgw, 11, decide="limit").status_code == 413
    r = requests.post(
        hgw.files_url,
        headers={**TUS, "Upload-Defer-Length": "1", "Upload-Metadata": _md(decide="limit")},
        timeout=30,
    )
    if r.status_code == 400:  # the store cannot defer lengths
        return
    url = r.headers["Location"]
    headers = {**TUS, **OCTET, "Upload-Offset": "0"}
    assert requests.patch(url, data=b"x" * 11, headers=headers, timeout=30).status_code == 413


def test_pre_finish_refusal_discards_the_upload(hgw: GatewayProcess, hooks: HookServer) -> None:
    key = f"never/{os.urandom(4).hex()}"
    token = uptoken(key=key)
    r = _create(hgw, 6, token, decide="reject-finish")
    url = r.headers["Location"]
    headers = {**TUS, **OCTET, "Upload-Offset": "0", **auth(token)}
    r = requests.patch(url, data=b"abc", headers=headers, timeout=30)
    assert r.status_code == 204
    r = requests.patch(url, data=b"def", headers={**headers, "Upload-Offset": "3"}, timeout=30)
    assert (r.status_code, r.text.strip()) == (422, "virus found")
    assert requests.head(url, headers={**TUS, **auth(token)}, timeout=30).status_code == 410
    assert requests.get(f"{hgw.url}/objects/default/{key}", timeout=30).status_code == 404
    assert hooks.events("pre-finish")[-1]["key"] == key
    time.sleep(0.5)
    assert not [c for c in hooks.events("post-finish") if c.get("key") == key]


def test_every_call_is_signed(hgw: GatewayProcess, hooks: HookServer) -> None:
    r = _create(hgw, 0, filename="empty")  # finished at once: pre-create, pre-finish, post-finish
    assert r.status_code == 201
    deadline = time.time() + 10
    upload_id = r.headers["Location"].rsplit("/", 1)[1]
    while time.time() < deadline and not [
        c for c in hooks.events("post-finish") if c.get("id") == upload_id
    ]:
        time.sleep(0.05)
    assert [c for c in hooks.events("post-finish") if c.get("id") == upload_id]
    assert hooks.unsigned == 0


@pytest.mark.parametrize("version", ["form", "v1", "v2"])
def test_qiniu_uploads_pass_the_hooks(
    hgw: GatewayProcess, hooks: HookServer, tmp_path: Any, version: str
) -> None:
    region = qiniu.Region(up_host=hgw.url, up_host_backup=hgw.url, scheme="http")
    sdk = qiniu.Auth(AK, SK)
    size = 100_000 if version == "form" else 5 * 1024 * 1024
    source = tmp_path / "q.bin"
    source.write_bytes(os.urandom(size))

    def put(key: str) -> tuple[Any, Any]:
        upload_token = sdk.upload_token("default", key)
        if version == "form":
            return qiniu.put_data(upload_token, key, source.read_bytes(), regions=[region])
        return qiniu.put_file_v2(upload_token, key, str(source), regions=[region], version=version)

    ret, info = put(f"q/{version}.bin")
    assert info.status_code == 200, info
    assert ret["key"] == f"q/{version}.bin"
    assert hooks.events("pre-finish")[-1]["key"] == f"q/{version}.bin"
    refused = f"reject/{version}.bin"
    ret, info = put(refused)
    assert ret is None and info.status_code == 422, info
    assert requests.get(f"{hgw.url}/objects/default/{refused}", timeout=30).status_code == 404


def test_hook_down_is_503_and_nothing_is_accepted(target: Target, tmp_path: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    with GatewayProcess(_config(target, dead)) as gw:
        r = _create(gw, 5, filename="x")
        assert r.status_code == 503
        assert r.headers["Retry-After"]
        assert "retry later" in r.text
        with pytest.raises(TusCommunicationError):
            tus.TusClient(gw.files_url).uploader(file_stream=io.BytesIO(b"abc")).upload()
        # the same for Qiniu: a form upload, v1 and v2, before any byte is kept
        region = qiniu.Region(up_host=gw.url, up_host_backup=gw.url, scheme="http")
        upload_token = qiniu.Auth(AK, SK).upload_token("default", "down.bin")
        ret, info = qiniu.put_data(upload_token, "down.bin", b"abc", regions=[region])
        assert ret is None and info.status_code == 503, info
        for version in ("v1", "v2"):
            source = tmp_path / f"{version}.bin"
            source.write_bytes(os.urandom(100_000))
            ret, info = qiniu.put_file_v2(
                upload_token, "down.bin", str(source), regions=[region], version=version
            )
            assert ret is None and info.status_code == 503, (version, info)
        assert requests.get(f"{gw.url}/objects/default/down.bin", timeout=30).status_code == 404
        log = gw.log_path.read_text()
        assert "pre-create hook" in log and dead in log


def test_pre_finish_unavailable_then_approved(hgw: GatewayProcess, hooks: HookServer) -> None:
    """A pre-finish hook that cannot answer: the last PATCH gets 503 +
    Retry-After and no object exists; the client's HEAD asks again and, once
    the hook approves, the upload is finished and the object made."""
    key = f"later/{os.urandom(4).hex()}.bin"
    token = uptoken(key=key)
    r = _create(hgw, 3, token, decide="unavailable-finish-once")
    url = r.headers["Location"]
    headers = {**TUS, **OCTET, "Upload-Offset": "0", **auth(token)}
    r = requests.patch(url, data=b"abc", headers=headers, timeout=30)
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, r.text
    assert "retry later" in r.text
    assert requests.get(f"{hgw.url}/objects/default/{key}", timeout=30).status_code == 404
    r = requests.head(url, headers={**TUS, **auth(token)}, timeout=30)
    assert r.status_code == 200 and r.headers["Upload-Offset"] == "3"
    assert urlsplit(r.headers["X-Object-Url"]).path.endswith("/" + key)
    assert requests.get(f"{hgw.url}/objects/default/{key}", timeout=30).content == b"abc"
    assert len([c for c in hooks.events("pre-finish") if c["key"] == key]) == 2


def test_pre_finish_asked_about_a_key_named_by_its_qetag(
    hgw: GatewayProcess, hooks: HookServer
) -> None:
    """saveKey with $(etag): the pre-create hook gets no key, the pre-finish
    hook the one the bytes named; down once, then the HEAD finishes the
    upload on that key (sealed and named once, asked again)."""
    data = os.urandom(5 * 1024 * 1024 + 3)
    prefix = f"named/{os.urandom(4).hex()}/"
    token = uptoken(saveKey=prefix + "$(etag)")
    r = _create(hgw, len(data), token, decide="unavailable-finish-once")
    assert r.status_code == 201, r.text
    assert hooks.events("pre-create")[-1]["key"] is None
    url = r.headers["Location"]
    headers = {**TUS, **OCTET, "Upload-Offset": "0", **auth(token)}
    r = requests.patch(url, data=data, headers=headers, timeout=60)
    assert r.status_code == 503, r.text
    key = prefix + etag_stream(io.BytesIO(data))
    assert requests.get(f"{hgw.url}/objects/default/{key}", timeout=30).status_code == 404
    r = requests.head(url, headers={**TUS, **auth(token)}, timeout=30)
    assert r.status_code == 200 and urlsplit(r.headers["X-Object-Url"]).path.endswith("/" + key)
    assert requests.get(f"{hgw.url}/objects/default/{key}", timeout=30).content == data
    assert len([c for c in hooks.events("pre-finish") if c["key"] == key]) == 2


@pytest.mark.parametrize("version", ["form", "v1", "v2"])
def test_qiniu_pre_create_refuses_and_rewrites(
    hgw: GatewayProcess, hooks: HookServer, tmp_path: Any, version: str
) -> None:
    """Before any byte is accepted (form: the token comes first with the SDK;
    v1: the first mkblk; v2: init) the hook refuses, or names the key and the
    metadata of the object."""
    region = qiniu.Region(up_host=hgw.url, up_host_backup=hgw.url, scheme="http")
    sdk = qiniu.Auth(AK, SK)
    data = os.urandom(100_000 if version == "form" else 5 * 1024 * 1024)
    source = tmp_path / "q.bin"
    source.write_bytes(data)

    def put(key: str) -> tuple[Any, Any]:
        upload_token = sdk.upload_token("default", key)
        if version == "form":
            return qiniu.put_data(upload_token, key, data, regions=[region])
        return qiniu.put_file_v2(upload_token, key, str(source), regions=[region], version=version)

    ret, info = put(f"precreate-reject/{version}.bin")
    assert ret is None and info.status_code == 403, info
    assert "quota exceeded" in str(info.text_body)
    # a size limit (10 bytes): v1 at its first block, v2 at its first part
    ret, info = put(f"precreate-limit/{version}.bin")
    assert ret is None and info.status_code == 413, info
    missing = requests.get(f"{hgw.url}/objects/default/precreate-limit/{version}.bin", timeout=30)
    assert missing.status_code == 404
    asked = f"precreate-rewrite-qiniu/{version}.bin"
    ret, info = put(asked)
    assert info.status_code == 200, info
    key = f"rewritten/qiniu/{version}.bin"
    assert ret["key"] == key
    assert requests.get(f"{hgw.url}/objects/default/{key}", timeout=30).content == data
    # one question per upload (v1: at the first of its two blocks), before its bytes
    assert len([c for c in hooks.events("pre-create") if c["key"] == asked]) == 1
    deadline = time.time() + 10
    while not [c for c in hooks.events("post-finish") if c["key"] == key]:
        assert time.time() < deadline, "no post-finish webhook"
        time.sleep(0.05)
    finished = [c for c in hooks.events("post-finish") if c["key"] == key][-1]
    assert finished["metadata"] == {"x-qn-meta-approved": "yes"}


def test_qiniu_form_file_before_its_token(hgw: GatewayProcess, hooks: HookServer) -> None:
    """qiniu-js sends the file first: the hook is asked once the token is in,
    before the object is made; a refusal leaves no object."""
    sdk = qiniu.Auth(AK, SK)

    def post(key: str) -> requests.Response:
        fields = [
            ("file", ("a.bin", b"file first", "application/octet-stream")),
            ("token", (None, sdk.upload_token("default", key))),
            ("key", (None, key)),
        ]
        return requests.post(hgw.url + "/", files=fields, timeout=30)

    r = post("precreate-reject/first.bin")
    assert r.status_code == 403 and "quota exceeded" in r.text
    r = post("precreate-rewrite-qiniu/first.bin")
    assert r.status_code == 200, r.text
    assert r.json()["key"] == "rewritten/qiniu/first.bin"
    got = requests.get(f"{hgw.url}/objects/default/rewritten/qiniu/first.bin", timeout=30)
    assert got.content == b"file first"
    refused = requests.get(f"{hgw.url}/objects/default/precreate-reject/first.bin", timeout=30)
    assert refused.status_code == 404


def test_pre_finish_on_an_upload_of_many_parts(hgw: GatewayProcess) -> None:
    """Past one S3 part (8 MiB) an upload under a pre-finish hook is written
    on its key (invisible until it is completed, after the approval): refused,
    the object already there stays as it was; approved, it is the object."""
    key = f"big/{os.urandom(4).hex()}.bin"
    token = uptoken(key=key)
    first = os.urandom(1000)
    tus.TusClient(hgw.files_url, headers=auth(token)).uploader(
        file_stream=io.BytesIO(first), metadata={"filename": "first.bin"}
    ).upload()
    assert requests.get(f"{hgw.url}/objects/default/{key}", timeout=30).content == first
    data = os.urandom(9 * 1024 * 1024 + 5)

    def upload(decide: str) -> requests.Response:
        r = _create(hgw, len(data), token, decide=decide)
        assert r.status_code == 201, r.text
        headers = {**TUS, **OCTET, "Upload-Offset": "0", **auth(token)}
        return requests.patch(r.headers["Location"], data=data, headers=headers, timeout=120)

    r = upload("reject-finish")
    assert (r.status_code, r.text.strip()) == (422, "virus found")
    assert requests.get(f"{hgw.url}/objects/default/{key}", timeout=30).content == first
    assert upload("go").status_code == 204
    assert requests.get(f"{hgw.url}/objects/default/{key}", timeout=60).content == data
