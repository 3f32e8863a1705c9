"""Form files above ``qiniu.form_buffer`` whose token and key come first go
straight into a multipart upload of their final key (S3), completed only
after every check the put policy and the pre-finish hook make once the bytes
are in, and aborted otherwise: no staging object, no copy, and nothing wrong
ever visible; a key that must be free is completed with ``If-None-Match: *``
where the store honours it (moto, Swift s3api 2.38). A file sent before its
token keeps the staging path. The store's work is read from the gateway's
own ``/metrics``; open multipart uploads from ``ListMultipartUploads``
(``Target.leftovers``)."""

from __future__ import annotations

import os
import shutil
import socket
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import qiniu
import requests

from gateway.core.records import Status
from tests.access.hook_server import SECRET, HookServer
from tests.observability.scrape import Samples, scrape, value
from tests.qiniu.harness import (
    BUCKET,
    MiB,
    file_sha256,
    qiniu_config,
    read_back,
    recorded_sha256,
    region,
    sha256,
    token,
)
from tests.qiniu.test_qiniu_direct import _answered, _leftovers, _store_calls
from tests.qiniu.test_qiniu_node import NODE_MODULES, _node
from tests.qiniu.test_qiniu_object_meta import DAY, _finished_records, _sweep_days_later
from tests.qiniu.test_qiniu_raw import multipart, post_form
from tests.support.targets import SwiftTarget, Target
from testservers.gateway import GatewayProcess

SIZE = 12 * MiB + 4321
COPIES = ("copy_object", "upload_part_copy", "copy")


@pytest.fixture(scope="module")
def fgw(target: Target, hooks: HookServer) -> Iterator[GatewayProcess]:
    """A gateway of this module's own (its store calls are its requests'),
    with a pre-finish hook that refuses keys under ``reject/``."""
    config = qiniu_config(target)
    hook = {"url": hooks.url, "events": ["pre-finish", "post-finish"], "secret": SECRET}
    config["hooks"] = [{**hook, "timeout": 5}]
    with GatewayProcess(config) as gw:
        yield gw


def _direct(target: Target, if_absent: bool = False) -> bool:
    """Whether a file goes straight to its key here (``if_absent``: a key
    that must be free, where the store completes on it conditionally)."""
    if not target.name.startswith("s3"):
        return False
    return not if_absent or bool(getattr(target, "complete_if_absent", False))


def _object(gw: GatewayProcess, key: str) -> requests.Response:
    return requests.get(f"{gw.url}/objects/{BUCKET}/{key}", timeout=60)


def test_sdk_form_file_is_written_once_on_its_key(fgw: GatewayProcess, target: Target) -> None:
    key, data = "form-direct/sdk.bin", os.urandom(SIZE)
    before = scrape(fgw.url)
    ret, info = qiniu.put_data(token(key), key, data, regions=[region(fgw)])
    assert info.status_code == 200, info
    assert ret["key"] == key
    after = _answered(fgw, before, 1)
    assert read_back(fgw, key) == sha256(data)
    assert recorded_sha256(fgw, key) == sha256(data)
    assert _store_calls(before, after, *COPIES) == 0
    if _direct(target):
        assert _store_calls(before, after, "create_multipart_upload") == 1
        assert _store_calls(before, after, "upload_part") == 2  # 8+ MiB, then the rest
        assert _store_calls(before, after, "complete_multipart_upload") == 1
        # no staging object: nothing put, nothing deleted, nothing looked at
        assert _store_calls(before, after, "put_object", "delete_object", "head_object") == 0
    assert _leftovers(target) == []


def test_the_object_keeps_its_type_metadata_lifetime_and_events(
    fgw: GatewayProcess, target: Target, hooks: HookServer
) -> None:
    """The content type sniffed from the first part is the one the upload is
    opened with (no copy onto itself at completion); the object's record has
    its metadata and lifetime, post-finish is sent, and the sweeper deletes
    the object when its days are over."""
    key = "form-direct/picture"  # no extension: the type is sniffed
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(SIZE)
    upload_token = token(key, deleteAfterDays=1, detectMime=1)
    body = multipart(
        [("token", upload_token), ("key", key), ("x-qn-meta-owner", "ann"), ("file", data)]
    )
    before = scrape(fgw.url)
    started = time.time()
    r = post_form(fgw, body)
    assert r.status_code == 200, r.text
    after = _answered(fgw, before, 1)
    got = _object(fgw, key)
    assert got.content == data and got.headers["Content-Type"] == "image/png"
    if _direct(target):
        assert _store_calls(before, after, *COPIES, "put_object") == 0
    [record] = [r for r in _finished_records(fgw, key) if r.status is Status.FINISHED]
    assert record.metadata == {"x-qn-meta-owner": "ann"}
    assert record.extra["mimeType"] == "image/png"
    if not isinstance(target, SwiftTarget):  # else the store deletes it itself
        assert record.expires_at is not None
        assert started + DAY - 5 <= record.expires_at <= time.time() + DAY + 5
        _sweep_days_later(fgw, record.id, 1.01)
        assert _object(fgw, key).status_code == 404
    deadline = time.monotonic() + 10
    while not [c for c in hooks.events("post-finish") if c.get("key") == key]:
        assert time.monotonic() < deadline, "no post-finish"
        time.sleep(0.1)
    assert _leftovers(target) == []


def test_node_sdk_form_file_crc32_after_it(
    fgw: GatewayProcess, target: Target, tmp_path: Path
) -> None:
    """The Node SDK (chunked body, crc32 after the file, bucket-scope
    token): written on its key, the crc32 checked before completion."""
    if shutil.which("node") is None or not (NODE_MODULES / "qiniu").is_dir():
        pytest.skip("node or tests/js/node_modules/qiniu missing")
    path = tmp_path / "node.bin"
    path.write_bytes(os.urandom(SIZE))
    before = scrape(fgw.url)
    result = _node(fgw, "form", "form-direct/node.bin", path)
    assert result["status"] == 200, result
    assert result["data"]["hash"] == qiniu.etag(str(path))
    after = _answered(fgw, before, 1)
    assert read_back(fgw, "form-direct/node.bin") == file_sha256(path)
    if _direct(target, if_absent=True):
        assert _store_calls(before, after, "complete_multipart_upload") == 1
        assert _store_calls(before, after, "put_object", "head_object", *COPIES) == 0
    assert _leftovers(target) == []


def test_bucket_scope_token_completes_only_on_a_free_key(
    fgw: GatewayProcess, target: Target
) -> None:
    """A token that may not replace an object: one conditional completion
    (no look before it) where the store honours If-None-Match: *; a taken
    key answers 614 and keeps its object, or 200 for the same content."""
    key, data = "form-direct/if-absent.bin", os.urandom(SIZE)
    body = multipart([("token", token()), ("key", key), ("file", data)])
    before = scrape(fgw.url)
    r = post_form(fgw, body)
    assert r.status_code == 200, r.text
    after = _answered(fgw, before, 1)
    if _direct(target, if_absent=True):
        assert _store_calls(before, after, "complete_multipart_upload") == 1
        assert _store_calls(before, after, "head_object", "put_object", *COPIES) == 0
    other = multipart([("token", token()), ("key", key), ("file", os.urandom(SIZE))])
    r = post_form(fgw, other)
    assert r.status_code == 614, r.text
    assert read_back(fgw, key) == sha256(data)
    r = post_form(fgw, body)
    assert r.status_code == 200, r.text
    assert read_back(fgw, key) == sha256(data)
    assert _leftovers(target) == []


@pytest.mark.parametrize(
    "case", ["crc32", "fsizeLimit", "mimeLimit", "pre-finish", "insertOnly", "cut"]
)
def test_refused_or_cut_file_never_becomes_visible(
    fgw: GatewayProcess, target: Target, case: str
) -> None:
    data = b"%PDF-1.4 " + os.urandom(SIZE)
    key = f"{'reject' if case == 'pre-finish' else 'form-direct'}/refused-{case}.bin"
    fields: list[tuple[str, str | bytes]] = [("key", key)]
    policy: dict[str, object] = {}
    old: bytes | None = None
    if case == "crc32":
        fields.append(("crc32", str(zlib.crc32(data) ^ 1)))
    elif case == "fsizeLimit":
        policy["fsizeLimit"] = 10 * MiB  # exceeded after the first part was stored
    elif case == "mimeLimit":
        policy.update(mimeLimit="image/*", detectMime=1)  # sniffed: application/pdf
    elif case == "insertOnly":
        old = os.urandom(1000)
        r = post_form(fgw, multipart([("token", token(key)), ("key", key), ("file", old)]))
        assert r.status_code == 200, r.text
        policy["insertOnly"] = 1
    body = multipart([("token", token(**policy)), *fields, ("file", data)])
    before = scrape(fgw.url)
    if case == "cut":
        _send_cut(fgw, body, len(body) - MiB)
    else:
        r = post_form(fgw, body)
        expected = {"crc32": 406, "fsizeLimit": 413, "mimeLimit": 403, "pre-finish": 422}
        assert r.status_code == expected.get(case, 614), r.text
    if _direct(target, if_absent=True):  # a bucket-scope token
        # the bytes went into an upload of the key, and it was dropped
        after = _when(fgw, before, "abort_multipart_upload")
        assert _store_calls(before, after, "create_multipart_upload") == 1
        assert _store_calls(before, after, "put_object", *COPIES) == 0
    got = _object(fgw, key)
    if old is not None:
        assert got.status_code == 200 and got.content == old
    else:
        assert got.status_code == 404
    assert _leftovers(target) == []
    # every part buffer's memory went back to the budget
    deadline = time.monotonic() + 10
    while value(scrape(fgw.url), "upload_gateway_memory_budget_bytes", kind="used") > 0:
        assert time.monotonic() < deadline, "memory budget not given back"
        time.sleep(0.2)


def test_upload_left_by_a_crash_is_aborted_by_the_sweeper(
    fgw: GatewayProcess, target: Target
) -> None:
    """SIGKILL while a file is written on its key: the object never
    appears, and the sweeper aborts the store's upload at its expiry."""
    key, data = "form-direct/crash.bin", os.urandom(SIZE)
    body = multipart([("token", token(key)), ("key", key), ("file", data)])
    before = scrape(fgw.url)
    with socket.create_connection(("127.0.0.1", fgw.port), timeout=60) as sock:
        sock.sendall(_form_head(fgw, body) + body[: 10 * MiB])
        if _direct(target):
            _when(fgw, before, "upload_part")  # the first part is stored
        fgw.kill()
    fgw.start()
    assert _object(fgw, key).status_code == 404
    active = [r for r in _finished_records(fgw, key) if r.status is Status.ACTIVE]
    if _direct(target):
        assert len(active) == 1 and target.leftovers()
    for record in active:
        _sweep_days_later(fgw, record.id, 1.01)
    assert _object(fgw, key).status_code == 404
    assert _leftovers(target) == []


def test_file_before_its_token_is_staged(fgw: GatewayProcess, target: Target) -> None:
    key, data = "form-direct/file-first.bin", os.urandom(SIZE)
    body = multipart([("file", data), ("key", key), ("token", token(key))])
    before = scrape(fgw.url)
    r = post_form(fgw, body)
    assert r.status_code == 200, r.text
    after = _answered(fgw, before, 1)
    assert read_back(fgw, key) == sha256(data)
    if _direct(target):  # a stream, then made the object at its key
        assert _store_calls(before, after, "copy_object", "upload_part_copy") >= 1
    assert _leftovers(target) == []


@pytest.mark.parametrize(
    ("save_key", "direct"),
    [
        ("form-direct/$(year)$(mon)/$(endUser)-$(uuid)", True),  # known before the file
        ("form-direct/$(fsize)-$(uuid)", False),  # known after it
        ("form-direct/$(x:name)-$(uuid)", False),  # a field may follow the file
    ],
)
def test_forced_save_key_goes_direct_when_known_first(
    fgw: GatewayProcess, target: Target, save_key: str, direct: bool
) -> None:
    data = os.urandom(SIZE)
    policy = {"saveKey": save_key, "forceSaveKey": True, "endUser": "ann"}
    body = multipart([("token", token(**policy)), ("x:name", "n"), ("file", data)])
    before = scrape(fgw.url)
    r = post_form(fgw, body)
    assert r.status_code == 200, r.text
    after = _answered(fgw, before, 1)
    key = r.json()["key"]
    assert key.startswith("form-direct/") and "$(" not in key, key
    assert read_back(fgw, key) == sha256(data)
    if _direct(target, if_absent=True):
        copied = _store_calls(before, after, *COPIES)
        assert copied == 0 if direct else copied >= 1
    assert _leftovers(target) == []


def test_file_of_more_parts_than_the_store_takes_is_staged(target: Target) -> None:
    """A store that takes 2 parts (``max_parts``): a 12 MiB file is two
    parts on its key; a request longer than two 8 MiB parts is staged."""
    if not _direct(target):
        pytest.skip("no multipart uploads on this store")
    config = qiniu_config(target)
    config["backends"]["default"]["max_parts"] = 2
    with GatewayProcess(config) as gw:
        for size, direct in ((SIZE, True), (20 * MiB, False)):
            key, data = f"form-direct/parts-{size}.bin", os.urandom(size)
            before = scrape(gw.url)
            r = post_form(gw, multipart([("token", token(key)), ("key", key), ("file", data)]))
            assert r.status_code == 200, r.text
            after = _answered(gw, before, 1)
            assert read_back(gw, key) == sha256(data)
            copied = _store_calls(before, after, *COPIES)
            assert copied == 0 if direct else copied >= 1
    assert _leftovers(target) == []


def test_key_changed_by_a_field_after_the_file_is_refused(
    fgw: GatewayProcess, target: Target
) -> None:
    """A second ``key`` field after the file (its bytes went to the first
    key's upload): 400 with the reason, nothing made at either key."""
    first, second = "form-direct/first.bin", "form-direct/second.bin"
    fields = [("token", token()), ("key", first), ("file", os.urandom(SIZE)), ("key", second)]
    r = post_form(fgw, multipart(fields))
    if _direct(target, if_absent=True):
        assert r.status_code == 400 and "key" in r.text, r.text
    else:  # staged: the last key field names it, as before
        assert r.status_code == 200, r.text
        assert _object(fgw, second).status_code == 200
    assert _object(fgw, first).status_code == 404
    assert _leftovers(target) == []


def test_key_named_by_the_bytes_is_staged(fgw: GatewayProcess, target: Target) -> None:
    """No key before the file (the object is named by its etag): staged."""
    data = os.urandom(SIZE)
    r = post_form(fgw, multipart([("token", token()), ("file", data)]))
    assert r.status_code == 200, r.text
    assert read_back(fgw, r.json()["key"]) == sha256(data)
    assert _leftovers(target) == []


def _form_head(gw: GatewayProcess, body: bytes) -> bytes:
    """The head of a raw form POST announcing all of ``body`` (``multipart``'s)."""
    return (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\n"
        "Content-Type: multipart/form-data; boundary=b0undary\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()


def _send_cut(gw: GatewayProcess, body: bytes, upto: int) -> None:
    """A form POST announcing all of ``body``, closed after ``upto`` bytes."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=60) as sock:
        sock.sendall(_form_head(gw, body) + body[:upto])
        time.sleep(0.5)


def _when(gw: GatewayProcess, before: Samples, operation: str) -> Samples:
    """The gateway's metrics once it made ``operation`` (the clean-up after
    a refusal or a cut runs as the request ends)."""
    deadline = time.monotonic() + 20
    while True:
        after = scrape(gw.url)
        if _store_calls(before, after, operation) >= 1 or time.monotonic() > deadline:
            return after
        time.sleep(0.2)
