"""Qiniu uploads at the store's speed, on every backend target.

* Form files whose token comes first are written once, straight to their key
  (S3: one PutObject, no copy, no delete), and only after every check the
  put policy makes once the bytes are in: a refused file never reaches the
  store. A file above ``qiniu.form_buffer`` goes into a multipart upload of
  its key where its key is known first (``test_qiniu_form_direct.py``), else
  it is streamed and moved as before.
* v2 parts of at least the store's minimum go straight into an upload of
  the object (S3: UploadPart on the final key, one Complete), in any order,
  re-sent or listed in part; shorter parts (the SDKs' 4 MiB) wait as
  streams until the next part joins them there; the object is exactly the
  listed parts, or the completion is refused (400) and nothing is made.
* The SDKs resume after a gateway SIGKILL between parts.

The store's work is read from the gateway's own ``/metrics``."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import qiniu
import requests
from qiniu import UploadProgressRecorder

from tests.observability.scrape import Samples, delta, scrape, scrape_when
from tests.qiniu.harness import (
    BUCKET,
    MiB,
    qiniu_config,
    read_back,
    recorded_sha256,
    region,
    sha256,
    token,
)
from tests.qiniu.test_qiniu_raw import multipart, post_form
from tests.qiniu.test_qiniu_sdk import _StopAfter
from tests.support.s3proxy import S3Proxy, Seen, upload_part
from tests.support.targets import S3Target, Target
from testservers.gateway import GatewayProcess

CALLS = "upload_gateway_backend_request_duration_seconds_count"
#: objects whose SHA-256 read bytes back (the parts' chain did not cover them)
REREADS = "upload_gateway_digest_rereads_total"


@pytest.fixture(scope="module")
def qgw(target: Target) -> Iterator[GatewayProcess]:
    """A gateway of this module's own: the store calls counted here are its
    requests' alone. (The session's Qiniu gateway goes on with the work
    other modules left it — clean-ups, the expiry sweeper — and in a whole
    run on s3-swift230 one of its deletes fell inside a count.)"""
    with GatewayProcess(qiniu_config(target)) as gw:
        yield gw


def _leftovers(target: Target, earlier: set[str] | None = None) -> list[str]:
    """The store's temporaries (but the ``earlier`` ones) once the clean-up
    the gateway starts after an answer (parts of an assembled object) had
    time to run."""

    def left() -> list[str]:
        return [k for k in target.leftovers() if k not in (earlier or set())]

    deadline = time.monotonic() + 10
    while (found := left()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def _store_calls(before: Samples, after: Samples, *operations: str) -> float:
    return sum(delta(before, after, CALLS, operation=op) for op in operations)


def _answered(gw: GatewayProcess, before: Samples, count: int) -> Samples:
    return scrape_when(
        gw.url,
        lambda s: delta(before, s, "upload_gateway_requests_total", method="POST") >= count,
    )


def test_sdk_form_file_is_one_write_on_its_key(qgw: GatewayProcess, target: Target) -> None:
    data = os.urandom(MiB + 3)
    before = scrape(qgw.url)
    ret, info = qiniu.put_data(
        token("direct/sdk.bin"), "direct/sdk.bin", data, regions=[region(qgw)]
    )
    assert info.status_code == 200, info
    assert ret["key"] == "direct/sdk.bin"
    after = _answered(qgw, before, 1)
    assert read_back(qgw, "direct/sdk.bin") == sha256(data)
    # nothing copied or moved inside the store, on any backend
    assert _store_calls(before, after, "copy_object", "upload_part_copy", "copy") == 0
    if target.name.startswith("s3"):
        assert _store_calls(before, after, "put_object") == 1
        assert _store_calls(before, after, "delete_object", "create_multipart_upload") == 0
        assert _store_calls(before, after, "head_object") == 0  # overwrite allowed: no stat
        # written whole by the request that created it: no stray piece to list for
        time.sleep(1)  # (the listing would run after the answer)
        assert _store_calls(before, scrape(qgw.url), "list_objects_v2") == 0
    _one_store_write(target, before, after)
    assert _leftovers(target) == []


#: every store request of a small form file written whole, per backend: Swift
#: one plain object PUT (no segment, manifest or listing), FastDFS one upload
#: of a normal file after the tracker's choice of server (no appender file to
#: create, append to, measure and rename)
_ONE_WRITE = {
    "swift": {"put_object": 1},
    "fastdfs": {"query_store_without_group_one": 1, "upload_file": 1},
}


def _one_store_write(target: Target, before: Samples, after: Samples) -> None:
    wanted = _ONE_WRITE.get(target.name)
    if wanted is None:
        return
    for operation, count in wanted.items():
        assert _store_calls(before, after, operation) == count, operation
    assert delta(before, after, CALLS) == sum(wanted.values())


def test_form_file_without_overwrite_right_is_one_conditional_write(
    qgw: GatewayProcess, target: Target
) -> None:
    """A token that may not replace an object (bucket scope): where the
    store honours If-None-Match: * (probed at start; moto does) the file is
    one conditional PutObject, no HEAD before it; a taken key is then looked
    at (same content: 200, other content: 614, the object unchanged)."""
    key, data = "direct/if-absent.bin", os.urandom(MiB + 5)
    before = scrape(qgw.url)
    _, info = qiniu.put_data(token(), key, data, regions=[region(qgw)])
    assert info.status_code == 200, info
    after = _answered(qgw, before, 1)
    if target.name == "s3-moto":
        assert _store_calls(before, after, "head_object") == 0
        assert _store_calls(before, after, "put_object") == 1
    _one_store_write(target, before, after)  # Swift: the PUT's If-None-Match: *, no HEAD
    _, info = qiniu.put_data(token(), key, os.urandom(MiB + 5), regions=[region(qgw)])
    assert info.status_code == 614, info
    assert read_back(qgw, key) == sha256(data)
    _, info = qiniu.put_data(token(), key, data, regions=[region(qgw)])
    assert info.status_code == 200, info
    assert read_back(qgw, key) == sha256(data)
    assert _leftovers(target) == []


@pytest.mark.parametrize(
    "case",
    ["crc32", "fsizeLimit", "fsizeMin", "mimeLimit", "insertOnly", "saveKey"],
)
def test_refused_form_file_never_reaches_the_store(
    qgw: GatewayProcess, target: Target, case: str
) -> None:
    data = b"%PDF-1.4 " + os.urandom(200_000)
    key = f"direct/refused-{case}.bin"
    fields: list[tuple[str, str | bytes]] = [("key", key)]
    policy: dict[str, object] = {}
    if case == "crc32":
        fields.append(("crc32", str(zlib.crc32(data) ^ 1)))
    elif case == "fsizeLimit":
        policy["fsizeLimit"] = 100_000  # exceeded while the file is held
    elif case == "fsizeMin":
        policy["fsizeMin"] = 300_000
    elif case == "mimeLimit":
        policy.update(mimeLimit="image/*", detectMime=1)  # sniffed: application/pdf
    elif case == "insertOnly":
        old = os.urandom(1000)
        r = post_form(qgw, multipart([("token", token()), ("key", key), ("file", old)]))
        assert r.status_code == 200, r.text
        policy["insertOnly"] = 1
    elif case == "saveKey":
        policy["forceSaveKey"] = True
        policy["saveKey"] = "../escape"
    expected = {
        "crc32": 406,
        "fsizeLimit": 413,
        "fsizeMin": 403,
        "mimeLimit": 403,
        "insertOnly": 614,
        "saveKey": 400,
    }[case]
    before = scrape(qgw.url)
    body = multipart([("token", token(**policy)), *fields, ("file", data)])
    r = post_form(qgw, body)
    assert r.status_code == expected, r.text
    after = _answered(qgw, before, 1)
    written = _store_calls(
        before, after, "put_object", "create_multipart_upload", "upload_part", "put", "write"
    )
    if case == "insertOnly" and target.name.startswith("s3"):
        # where the store honours If-None-Match: * (moto), the taken key is
        # found by the conditional PutObject itself, which the store refuses
        # (412): nothing is stored (the object below is unchanged)
        assert written == 1 if target.name == "s3-moto" else written <= 1
    elif case == "insertOnly" and target.name == "swift":
        assert written == 1  # the plain PUT with If-None-Match: *, refused
    else:
        assert written == 0, "a refused file was sent to the store"
    got = requests.get(f"{qgw.url}/objects/{BUCKET}/{key}", timeout=30)
    if case == "insertOnly":
        assert got.status_code == 200 and got.content == old
    else:
        assert got.status_code == 404
    assert _leftovers(target) == []


@pytest.fixture(scope="module")
def small_buffer_gw(target: Target) -> Iterator[GatewayProcess]:
    with GatewayProcess(qiniu_config(target, form_buffer=64 * 1024)) as gw:
        yield gw


def test_form_file_above_the_buffer_is_streamed(
    small_buffer_gw: GatewayProcess, target: Target
) -> None:
    gw = small_buffer_gw
    data = os.urandom(MiB + 11)
    _, info = qiniu.put_data(token(), "direct/big.bin", data, regions=[region(gw)])
    assert info.status_code == 200, info
    assert read_back(gw, "direct/big.bin") == sha256(data)
    body = multipart(
        [("token", token(fsizeLimit=500_000)), ("key", "direct/big-refused.bin"), ("file", data)]
    )
    r = post_form(gw, body)
    assert r.status_code == 413, r.text
    assert (
        requests.get(f"{gw.url}/objects/{BUCKET}/direct/big-refused.bin", timeout=30).status_code
        == 404
    )
    assert _leftovers(target) == []


# -- v2: parts of at least the store's minimum go straight into the object's upload --
def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


class V2:
    """A raw v2 session (the SDKs only send parts in order)."""

    def __init__(self, gw: GatewayProcess, key: str, upload_token: str | None = None) -> None:
        self.headers = {"Authorization": f"UpToken {upload_token or token()}"}
        self.base = f"{gw.url}/buckets/{BUCKET}/objects/{_b64(key)}/uploads"
        r = requests.post(self.base, headers=self.headers, timeout=30)
        assert r.status_code == 200, r.text
        self.upload_id = r.json()["uploadId"]
        self.etags: dict[int, str] = {}

    def put(self, number: int, data: bytes) -> None:
        r = requests.put(
            f"{self.base}/{self.upload_id}/{number}", data=data, headers=self.headers, timeout=60
        )
        assert r.status_code == 200, r.text
        self.etags[number] = r.json()["etag"]

    def complete(self, numbers: list[int], **fields: str) -> requests.Response:
        parts = [{"partNumber": n, "etag": self.etags[n]} for n in numbers]
        body = {"parts": parts, **fields}
        return requests.post(
            f"{self.base}/{self.upload_id}", json=body, headers=self.headers, timeout=120
        )


def _parts_direct(target: Target) -> bool:
    """Qiniu v2 parts go straight into the object's S3 upload (not on a store
    that makes an object only from every part written: Ceph RGW 16)."""
    return target.name.startswith("s3") and getattr(target, "partial_complete", True)


def test_sdk_v2_large_parts_are_stored_once(qgw: GatewayProcess, target: Target) -> None:
    data = os.urandom(2 * 8 * MiB + 12345)
    path = Path(tempfile.mkdtemp()) / "v2.bin"
    path.write_bytes(data)
    before = scrape(qgw.url)
    ret, info = qiniu.put_file_v2(
        token(), "direct/v2-8.bin", str(path), regions=[region(qgw)], part_size=8 * MiB
    )
    assert info.status_code == 200, info
    assert ret["key"] == "direct/v2-8.bin"
    after = _answered(qgw, before, 2)
    assert read_back(qgw, "direct/v2-8.bin") == sha256(data)
    # the SHA-256 chained through the parts as they came: nothing read back
    assert recorded_sha256(qgw, "direct/v2-8.bin") == sha256(data)
    assert delta(before, after, REREADS) == 0
    if _parts_direct(target):
        # two 8 MiB parts into the object's upload, the short last one stored
        # on its own and copied in by the store, one Complete; no copy-through
        assert _store_calls(before, after, "create_multipart_upload") == 1
        assert _store_calls(before, after, "upload_part") == 2
        assert _store_calls(before, after, "put_object") == 1
        assert _store_calls(before, after, "upload_part_copy") <= 1
        assert _store_calls(before, after, "complete_multipart_upload") == 1
        assert _store_calls(before, after, "copy_object") == 0
        assert _store_calls(before, after, "get_object") == 0
    assert _leftovers(target) == []
    if _parts_direct(target):
        # the short parts' streams, released together: one listing of their
        # stray pieces (the ids of a session's parts share its prefix)
        assert _store_calls(before, scrape(qgw.url), "list_objects_v2") == 1


def test_v2_parts_out_of_order_resent_and_listed_in_part(
    qgw: GatewayProcess, target: Target
) -> None:
    size = 5 * MiB + 1
    p = {n: os.urandom(size) for n in (1, 2, 3)}
    before = scrape(qgw.url)
    session = V2(qgw, "direct/v2-order.bin")
    session.put(3, p[3])
    session.put(1, p[1])
    session.put(2, os.urandom(size))
    session.put(2, p[2])  # re-sent: the newer bytes count
    r = session.complete([1, 2, 3])
    assert r.status_code == 200, r.text
    assert read_back(qgw, "direct/v2-order.bin") == sha256(p[1] + p[2] + p[3])
    # part 3 was chained after the first part 2: read back for the SHA-256
    assert recorded_sha256(qgw, "direct/v2-order.bin") == sha256(p[1] + p[2] + p[3])

    subset = V2(qgw, "direct/v2-subset.bin")
    for n in (1, 2, 3):
        subset.put(n, p[n])
    r = subset.complete([1, 3])  # the object is exactly the listed parts
    assert r.status_code == 200, r.text
    assert read_back(qgw, "direct/v2-subset.bin") == sha256(p[1] + p[3])
    assert recorded_sha256(qgw, "direct/v2-subset.bin") == sha256(p[1] + p[3])
    # each object read back its part 3 (chained after a part 2 it does not list)
    assert delta(before, _answered(qgw, before, 4), REREADS) == 2
    assert _leftovers(target) == []


def test_sdk_v2_4mib_parts_pair_up(qgw: GatewayProcess, target: Target) -> None:
    data = os.urandom(4 * 4 * MiB + 12345)
    path = Path(tempfile.mkdtemp()) / "v2-4.bin"
    path.write_bytes(data)
    before = scrape(qgw.url)
    _, info = qiniu.put_file_v2(token(), "direct/v2-4.bin", str(path), regions=[region(qgw)])
    assert info.status_code == 200, info
    after = _answered(qgw, before, 2)
    assert read_back(qgw, "direct/v2-4.bin") == sha256(data)
    assert recorded_sha256(qgw, "direct/v2-4.bin") == sha256(data)
    assert delta(before, after, REREADS) == 0
    if _parts_direct(target):
        # the SDK sends 3 parts at a time; each waits for the one before it
        # to be stored. Mostly parts 1 and 3 (and the short last one) are
        # stored on their own, parts 2 and 4 go into the object's upload
        # joined to them (their bytes still in memory), the
        # last is copied in by the store, one Complete; when part 2 comes
        # in before part 1 was announced, parts 1-3 are joined instead
        assert _store_calls(before, after, "create_multipart_upload") == 1
        assert 3 <= _store_calls(before, after, "put_object") <= 4
        assert 1 <= _store_calls(before, after, "upload_part") <= 2
        assert _store_calls(before, after, "upload_part_copy") <= 1
        assert _store_calls(before, after, "complete_multipart_upload") == 1
        assert _store_calls(before, after, "copy_object") == 0
        # nothing read back: neither a short part nor the object (its
        # SHA-256 was chained through the parts, held until their turn)
        assert _store_calls(before, after, "get_object") == 0
    assert _leftovers(target) == []
    if _parts_direct(target):
        # the short parts' streams, released together: one listing of their
        # stray pieces (the ids of a session's parts share its prefix)
        assert _store_calls(before, scrape(qgw.url), "list_objects_v2") == 1


def test_v2_short_parts_out_of_order_are_joined(qgw: GatewayProcess, target: Target) -> None:
    p = {n: os.urandom(4 * MiB + n) for n in (1, 2, 3, 4)}
    p[5] = os.urandom(1000)
    before = scrape(qgw.url)
    session = V2(qgw, "direct/v2-joined.bin")
    for n in (2, 1, 3, 4, 5):  # part 2 first: 1 and 2 wait, 3 takes them along
        session.put(n, p[n])
    r = session.complete([1, 2, 3, 4, 5])
    assert r.status_code == 200, r.text
    whole = sha256(b"".join(p[n] for n in range(1, 6)))
    assert read_back(qgw, "direct/v2-joined.bin") == whole
    # part 2 held until part 1 came: the chain covers them all
    assert recorded_sha256(qgw, "direct/v2-joined.bin") == whole
    assert delta(before, _answered(qgw, before, 2), REREADS) == 0
    assert _leftovers(target) == []


def test_v2_pairs_of_short_parts_go_side_by_side(qgw: GatewayProcess, target: Target) -> None:
    """4 MiB parts, three at a time: part 4 waits for part 3 to join it, and
    part 5 — which will not join part 4 — does not wait for part 4 (it was
    kept waiting behind the whole chain before)."""
    if not _parts_direct(target):
        pytest.skip("parts are joined only where they go into the object's upload")
    p = {n: os.urandom(4 * MiB + n) for n in range(1, 7)}
    session = V2(qgw, "direct/v2-side.bin")
    session.put(1, p[1])
    session.put(2, p[2])  # joined to part 1
    release = threading.Event()

    def put_third() -> None:  # its first MiB, then the rest once released
        url = urlsplit(f"{session.base}/{session.upload_id}/3")
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
        try:
            conn.putrequest("PUT", url.path)
            for name, value in {**session.headers, "Content-Length": str(len(p[3]))}.items():
                conn.putheader(name, value)
            conn.endheaders()
            conn.send(p[3][:MiB])
            release.wait(60)  # part 3 is still arriving while parts 4 and 5 come
            conn.send(p[3][MiB:])
            r = conn.getresponse()
            body = r.read()
        finally:
            conn.close()
        assert r.status == 200, body
        session.etags[3] = json.loads(body)["etag"]

    with ThreadPoolExecutor(2) as pool:
        third = pool.submit(put_third)
        time.sleep(0.5)
        fourth = pool.submit(session.put, 4, p[4])  # waits for part 3: joins it
        time.sleep(0.5)
        started = time.monotonic()
        session.put(5, p[5])  # stored on its own at once
        assert time.monotonic() - started < 5
        assert not third.done() and not fourth.done()
        release.set()
        third.result(60)
        fourth.result(60)
    session.put(6, p[6])
    r = session.complete([1, 2, 3, 4, 5, 6])
    assert r.status_code == 200, r.text
    assert read_back(qgw, "direct/v2-side.bin") == sha256(b"".join(p[n] for n in range(1, 7)))
    assert _leftovers(target) == []


def test_v2_small_part_before_a_large_one(qgw: GatewayProcess, target: Target) -> None:
    big, small = os.urandom(5 * MiB + 7), os.urandom(MiB + 3)
    session = V2(qgw, "direct/v2-mixed.bin")
    session.put(1, big)
    session.put(2, small)
    session.put(3, big)  # on S3: joined to part 2 in the object's upload
    r = session.complete([1, 2, 3])
    assert r.status_code == 200, r.text
    assert read_back(qgw, "direct/v2-mixed.bin") == sha256(big + small + big)

    key = "direct/v2-left-out.bin"
    session = V2(qgw, key)
    for n, data in ((1, big), (2, small), (3, big)):
        session.put(n, data)
    r = session.complete([1, 3])
    if _parts_direct(target):
        # part 3 is only in the store's upload, after part 2's bytes
        assert r.status_code == 400, r.text
        assert "stored together with part(s) 2" in r.json()["error"]
        assert requests.get(f"{qgw.url}/objects/{BUCKET}/{key}", timeout=30).status_code == 404
        r = session.complete([1, 2])  # the short part last: fine
        assert r.status_code == 200, r.text
        assert read_back(qgw, key) == sha256(big + small)
        assert recorded_sha256(qgw, key) == sha256(big + small)
    else:
        assert r.status_code == 200, r.text
        assert read_back(qgw, key) == sha256(big + big)
        assert recorded_sha256(qgw, key) == sha256(big + big)
    assert _leftovers(target) == []


def test_v2_joined_part_sent_again(qgw: GatewayProcess, target: Target) -> None:
    one, two, other = (os.urandom(4 * MiB) for _ in range(3))
    same = V2(qgw, "direct/v2-same.bin")
    same.put(1, one)
    same.put(2, two)  # joined to part 1
    same.put(1, one)  # an answer lost: the same bytes again
    r = same.complete([1, 2])
    assert r.status_code == 200, r.text
    assert read_back(qgw, "direct/v2-same.bin") == sha256(one + two)

    key = "direct/v2-changed.bin"
    changed = V2(qgw, key)
    changed.put(1, one)
    changed.put(2, two)
    changed.put(1, other)  # other bytes: part 2's part in the store is stale
    r = changed.complete([1, 2])
    if _parts_direct(target):
        assert r.status_code == 400, r.text
        assert "sent again with other bytes" in r.json()["error"]
        assert requests.get(f"{qgw.url}/objects/{BUCKET}/{key}", timeout=30).status_code == 404
        changed.put(2, two)  # joined again, to the new part 1
        r = changed.complete([1, 2])
    assert r.status_code == 200, r.text
    assert read_back(qgw, key) == sha256(other + two)
    assert recorded_sha256(qgw, key) == sha256(other + two)
    assert _leftovers(target) == []


def test_v2_type_decided_at_completion(qgw: GatewayProcess) -> None:
    session = V2(qgw, "direct/v2-typed")
    session.put(1, os.urandom(5 * MiB))
    r = session.complete([1], mimeType="image/png")
    assert r.status_code == 200, r.text
    got = requests.get(f"{qgw.url}/objects/{BUCKET}/direct/v2-typed", timeout=30)
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/png"


def test_v2_abort_and_refusal_leave_nothing(qgw: GatewayProcess, target: Target) -> None:
    session = V2(qgw, "direct/v2-aborted.bin")
    session.put(1, os.urandom(5 * MiB))
    r = requests.delete(f"{session.base}/{session.upload_id}", headers=session.headers, timeout=30)
    assert r.status_code == 200, r.text
    refused = V2(qgw, "direct/v2-refused.bin", token(fsizeLimit=MiB))
    refused.put(1, os.urandom(5 * MiB))
    r = refused.complete([1])
    assert r.status_code == 413, r.text
    r = requests.delete(f"{refused.base}/{refused.upload_id}", headers=refused.headers, timeout=30)
    assert r.status_code == 200, r.text
    for key in ("direct/v2-aborted.bin", "direct/v2-refused.bin"):
        assert requests.get(f"{qgw.url}/objects/{BUCKET}/{key}", timeout=30).status_code == 404
    assert _leftovers(target) == []


def _temporary_put(r: Seen) -> bool:
    """A short part stored as a temporary object of its own (a PutObject)."""
    return r.method == "PUT" and "partNumber" not in r.query and ".upload-gateway/" in r.path


@pytest.fixture(scope="module")
def slow_store(target: Target) -> Iterator[tuple[S3Proxy, GatewayProcess]]:
    """A gateway whose S3 store answers through a proxy that can hold a
    request (a slow store)."""
    if not _parts_direct(target):
        pytest.skip("parts are joined only where they go into the object's upload")
    assert isinstance(target, S3Target)
    with S3Proxy(target.endpoint) as proxy:
        config = qiniu_config(target)
        config["backends"]["default"]["endpoint_url"] = proxy.url
        with GatewayProcess(config) as gw:
            yield proxy, gw


@pytest.mark.parametrize("store_fails", [False, True])
def test_v2_part_joins_its_predecessor_while_that_one_is_stored(
    slow_store: tuple[S3Proxy, GatewayProcess], store_fails: bool
) -> None:
    """Part 2 goes into the object's upload joined to part 1 as soon as part
    1's bytes are in and verified — not once part 1 is stored (the store
    writes overlap). If part 1's store write then fails, the client sends it
    again, and the object is still exactly the parts."""
    proxy, gw = slow_store
    p1, p2 = os.urandom(4 * MiB + 1), os.urandom(4 * MiB + 2)
    key = f"direct/v2-early-{store_fails}.bin"
    session = V2(gw, key)
    held = f"held-{store_fails}"
    proxy.hold(held, _temporary_put)
    with ThreadPoolExecutor(2) as pool:
        try:
            first = pool.submit(
                requests.put,
                f"{session.base}/{session.upload_id}/1",
                data=p1,
                headers=session.headers,
                timeout=60,
            )
            proxy.wait_held(held)  # part 1 received, its store write waiting
            before = scrape(gw.url)
            pool.submit(session.put, 2, p2).result(timeout=8)
            assert not first.done()
            assert _store_calls(before, scrape(gw.url), "upload_part") == 1
            if store_fails:
                proxy.refuse(held, _temporary_put, 403, "AccessDenied", "Access Denied")
        finally:
            proxy.release(held)
        answer = first.result(60)
    if store_fails:
        proxy.allow(held)
        assert answer.status_code == 503, answer.text  # the store refused it
        session.put(1, p1)  # the client sends it again
    else:
        assert answer.status_code == 200, answer.text
        session.etags[1] = answer.json()["etag"]
    r = session.complete([1, 2])
    assert r.status_code == 200, r.text
    assert read_back(gw, key) == sha256(p1 + p2)
    assert recorded_sha256(gw, key) == sha256(p1 + p2)


@pytest.fixture(scope="module")
def killable(target: Target) -> Iterator[GatewayProcess]:
    with GatewayProcess(qiniu_config(target)) as gw:
        yield gw


@pytest.mark.parametrize(
    ("version", "part_size", "parts"),
    # v2 4 MiB after 3 parts: part 3 waits (on S3) to be joined to part 4
    [("v1", 4, 2), ("v2", 4, 2), ("v2", 4, 3), ("v2", 8, 2)],
)
def test_sdk_resumes_after_sigkill_between_parts(
    killable: GatewayProcess,
    target: Target,
    recorder: UploadProgressRecorder,
    version: str,
    part_size: int,
    parts: int,
) -> None:
    data = os.urandom(4 * part_size * MiB + 999)
    path = Path(tempfile.mkdtemp()) / "kill.bin"
    path.write_bytes(data)
    key = f"direct/kill-{version}-{part_size}-{parts}.bin"
    upload_token = token()
    stop = _StopAfter(parts, part_size * MiB)
    kwargs: dict[str, Any] = dict(
        regions=[region(killable)],
        upload_progress_recorder=recorder,
        version=version,
        progress_handler=stop,
    )
    if version == "v2":
        kwargs["part_size"] = part_size * MiB
    with pytest.raises(RuntimeError, match="stop here"):
        qiniu.put_file_v2(upload_token, key, str(path), **kwargs)
    killable.kill()  # SIGKILL between parts: no clean-up at all
    killable.start()
    stop.first = None
    ret, info = qiniu.put_file_v2(upload_token, key, str(path), **kwargs)
    assert info.status_code == 200, info
    assert stop.first is not None and stop.first > part_size * MiB, "the SDK did not resume"
    assert ret["key"] == key
    assert read_back(killable, key) == sha256(data)
    # the chain's links are in the state store; what the crash lost is read back
    assert recorded_sha256(killable, key) == sha256(data)
    # (a part the SDK sent again after the crash leaves the first copy to the sweeper)


def _put_part(session: V2, number: int, data: bytes, md5: str) -> requests.Response:
    headers = {**session.headers, "Content-MD5": md5}
    url = f"{session.base}/{session.upload_id}/{number}"
    return requests.put(url, data=data, headers=headers, timeout=60)


def test_v2_part_sent_again_unchanged_after_a_later_part_joined_it(
    qgw: GatewayProcess, target: Target
) -> None:
    """Parts 2 and 1 arrive apart (2 first: nothing to wait for), so part 3
    is stored joined to both; then part 2 comes again with the same bytes — an
    SDK resuming after a restart it did not see the answer of. It is answered
    from its record, not stored again (joined to part 1 it would be a second
    copy of its bytes, in a grouping no completion can use: the completion was
    refused, 400), and the object is exactly the parts."""
    p1, p2, p3 = os.urandom(4 * MiB + 1), os.urandom(4 * MiB + 2), os.urandom(4 * MiB + 3)
    key = "direct/v2-sent-again.bin"
    session = V2(qgw, key)
    for number, data in ((2, p2), (1, p1), (3, p3)):
        answer = _put_part(session, number, data, hashlib.md5(data).hexdigest())
        assert answer.status_code == 200, answer.text
        session.etags[number] = answer.json()["etag"]
    before = scrape(qgw.url)
    again = _put_part(session, 2, p2, hashlib.md5(p2).hexdigest())
    assert again.status_code == 200, again.text
    assert again.json()["etag"] == session.etags[2]
    if target.name.startswith("s3"):  # nothing went to the store
        after = scrape(qgw.url)
        assert _store_calls(before, after, "upload_part") == 0
        assert _store_calls(before, after, "put_object") == 0
    r = session.complete([1, 2, 3])
    assert r.status_code == 200, r.text
    assert read_back(qgw, key) == sha256(p1 + p2 + p3)


def test_v2_part_alone_is_checked_against_its_content_md5(
    qgw: GatewayProcess, target: Target
) -> None:
    """A part of at least the store's minimum goes alone into the object's
    upload; where the store's ETag of a part is its MD5 (probed), that ETag —
    what the store received — is checked against the client's Content-MD5
    instead of the gateway hashing the part: a wrong one is refused (406),
    the part is not listed, and the right one makes the object."""
    if not _parts_direct(target):
        pytest.skip("parts are joined only where they go into the object's upload")
    data = os.urandom(6 * MiB + 7)
    key = "direct/v2-md5-checked.bin"
    session = V2(qgw, key)
    before = scrape(qgw.url)
    wrong = _put_part(session, 1, data, hashlib.md5(data[1:]).hexdigest())
    assert wrong.status_code == 406, wrong.text
    assert "Content-MD5" in wrong.text
    assert _store_calls(before, scrape(qgw.url), "upload_part") == 1  # it went to the store
    listed = requests.get(
        f"{session.base}/{session.upload_id}", headers=session.headers, timeout=30
    )
    assert listed.json()["parts"] == []
    right = _put_part(session, 1, data, base64.b64encode(hashlib.md5(data).digest()).decode())
    assert right.status_code == 200, right.text
    assert right.json()["md5"] == hashlib.md5(data).hexdigest()
    session.etags[1] = right.json()["etag"]
    r = session.complete([1])
    assert r.status_code == 200, r.text
    assert read_back(qgw, key) == sha256(data)


def test_v2_short_part_is_checked_by_the_etag_of_its_one_put(
    qgw: GatewayProcess, target: Target
) -> None:
    """A part below the store's minimum is a temporary object of its own,
    one PutObject as its bytes arrive; on S3, where ETags are MD5s, that
    ETag is checked against the client's Content-MD5 instead of the gateway
    hashing the part: a wrong one is refused (406, counted as the store's
    finding), nothing is kept or listed; the right one is joined by the next
    part from memory and makes the object."""
    first, second = os.urandom(4 * MiB), os.urandom(4 * MiB + 3)
    key = "direct/v2-short-md5.bin"
    # (the SIGKILL test before leaves a v1 block it saw sent twice to the sweeper)
    earlier = set(target.leftovers())
    session = V2(qgw, key)
    before = scrape(qgw.url)
    wrong = _put_part(session, 1, first, hashlib.md5(first[1:]).hexdigest())
    assert wrong.status_code == 406, wrong.text
    assert "Content-MD5" in wrong.text
    if target.name.startswith("s3"):
        fallbacks = "upload_gateway_backend_fallbacks_total"
        after = scrape(qgw.url)
        assert delta(before, after, fallbacks, reason="etag_mismatch") == 1
        assert _store_calls(before, after, "put_object") == 1  # it went to the store
    listed = requests.get(
        f"{session.base}/{session.upload_id}", headers=session.headers, timeout=30
    )
    assert listed.json()["parts"] == []
    for number, data in ((1, first), (2, second)):
        right = _put_part(session, number, data, hashlib.md5(data).hexdigest())
        assert right.status_code == 200, right.text
        assert right.json()["md5"] == hashlib.md5(data).hexdigest()
        session.etags[number] = right.json()["etag"]
    r = session.complete([1, 2])
    assert r.status_code == 200, r.text
    assert read_back(qgw, key) == sha256(first + second)
    if _parts_direct(target):
        assert _store_calls(before, scrape(qgw.url), "get_object") == 0  # joined from memory
    assert _leftovers(target, earlier) == []


def test_v2_short_part_checked_by_its_etag_goes_without_a_trailer(
    slow_store: tuple[S3Proxy, GatewayProcess],
) -> None:
    """The short part's one PutObject is checked by its ETag against the
    client's MD5, end to end: it goes as its plain bytes, as they arrive,
    without the CRC32 trailer (aws-chunked) a forwarded body carries
    otherwise — nothing more for the gateway to hash."""
    proxy, gw = slow_store
    data = os.urandom(4 * MiB + 5)
    key = "direct/v2-short-no-trailer.bin"
    session = V2(gw, key)
    proxy.hold("short-put", _temporary_put)
    with ThreadPoolExecutor(1) as pool:
        try:
            sent = pool.submit(_put_part, session, 1, data, hashlib.md5(data).hexdigest())
            proxy.wait_held("short-put")
        finally:
            proxy.release("short-put")
        answer = sent.result(timeout=60)
    assert answer.status_code == 200, answer.text
    put = proxy.held_seen["short-put"][0]
    assert "x-amz-trailer" not in put.headers
    assert "aws-chunked" not in put.headers.get("Content-Encoding", "")
    assert put.body == data
    session.etags[1] = answer.json()["etag"]
    r = session.complete([1])
    assert r.status_code == 200, r.text
    assert read_back(gw, key) == sha256(data)


def test_v2_part_whose_store_etag_is_not_its_md5_is_refused(
    slow_store: tuple[S3Proxy, GatewayProcess],
) -> None:
    """The store's ETags stop being MD5s after start-up (AWS with SSE-KMS
    turned on): a part checked by its ETag cannot be told from one changed on
    its way, so it is refused (406, the client sends it again), counted as a
    fallback and logged, never committed; the re-probe then has the gateway
    hash parts itself."""
    proxy, gw = slow_store
    data = os.urandom(6 * MiB + 11)
    md5 = hashlib.md5(data).hexdigest()
    key = "direct/v2-etag-not-md5.bin"
    session = V2(gw, key)
    before = scrape(gw.url)
    proxy.set_header("kms", upload_part, "ETag", '"' + "ab" * 16 + '"')
    try:
        refused = _put_part(session, 1, data, md5)
    finally:
        proxy.unset("kms")
    assert refused.status_code == 406, refused.text
    after = scrape(gw.url)
    fallbacks = "upload_gateway_backend_fallbacks_total"
    assert delta(before, after, fallbacks, operation="upload_part", reason="etag_mismatch") == 1
    assert "etag_mismatch" in gw.log() and md5 in gw.log()
    right = _put_part(session, 1, data, md5)
    assert right.status_code == 200, right.text
    session.etags[1] = right.json()["etag"]
    r = session.complete([1])
    assert r.status_code == 200, r.text
    assert read_back(gw, key) == sha256(data)
