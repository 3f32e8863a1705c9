"""Instant upload (秒传) over real HTTP on every backend target: a creation
declaring the SHA-256 of bytes the bucket already holds for its owner
completes at once, no PATCH byte is read (the gateway's own
``bytes_received`` counter), the new object is its own copy; other owners
never match; real clients (tuspy, tus-js-client) that ignore the extension
end with identical bytes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qiniu
import requests
from tusclient import client as tus_client

from tests.access.support import JWT_SECRET, auth, bearer
from tests.client.harness import run
from tests.conftest import gateway_config
from tests.observability.scrape import delta, scrape, scrape_when
from tests.qiniu.harness import qiniu_config, region
from tests.qiniu.harness import token as qiniu_token
from tests.support.browser import run_browser_script
from tests.support.targets import Target
from tests.tus.helpers import OCTET, TUS, download, head
from tests.tus.test_tus_js_client import run_tus_js
from testservers.gateway import GatewayProcess

MiB = 1024 * 1024
P = "upload_gateway_"


@pytest.fixture(scope="module")
def igw(target: Target) -> Iterator[GatewayProcess]:
    """Anonymous uploads to a public bucket, JWTs for owners, a private bucket."""
    config = gateway_config(
        target,
        access={"jwt": {"algorithms": ["HS256"], "secret": JWT_SECRET}},
    )
    with GatewayProcess(config) as gw:
        yield gw


def repr_digest(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


def create(
    gw: GatewayProcess, data: bytes, token: str | None = None, **headers: str
) -> requests.Response:
    h = {**TUS, "Upload-Length": str(len(data)), "Repr-Digest": repr_digest(data)}
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    if token:
        h.update(auth(token))
    r = requests.post(gw.files_url, headers=h, timeout=60)
    assert r.status_code == 201, (r.status_code, r.text)
    return r


def upload(gw: GatewayProcess, data: bytes, token: str | None = None) -> str:
    """A whole upload the ordinary way (one PATCH); its object URL."""
    r = create(gw, data, token)
    if int(r.headers["Upload-Offset"]) < len(data):
        h = {**TUS, **OCTET, "Upload-Offset": "0", **(auth(token) if token else {})}
        p = requests.patch(r.headers["Location"], data=data, headers=h, timeout=120)
        assert p.status_code == 204, (p.status_code, p.text)
        return str(p.headers["X-Object-Url"])
    return str(r.headers["X-Object-Url"])


def received(samples: dict[Any, float], before: dict[Any, float]) -> float:
    return delta(before, samples, P + "bytes_received_total", protocol="tus")


def _patches(before: dict[Any, float], after: dict[Any, float]) -> float:
    """tus PATCHes answered 204 between two scrapes."""
    return delta(before, after, P + "requests_total", method="PATCH", status="204")


def jwt_for(sub: str) -> str:
    return bearer({"scope": "default"}, sub=sub)


def test_a_second_upload_of_the_same_bytes_completes_at_creation(igw: GatewayProcess) -> None:
    data = os.urandom(3 * MiB + 11)
    first = upload(igw, data)
    assert "instant-upload" in requests.options(igw.files_url, timeout=10).headers["Tus-Extension"]
    before = scrape(igw.url)
    r = create(igw, data, Upload_Metadata="filetype dGV4dC9wbGFpbg==")
    assert r.headers["Upload-Offset"] == str(len(data))
    second = r.headers["X-Object-Url"]
    assert second != first
    after = scrape(igw.url)
    assert received(after, before) == 0
    assert delta(before, after, P + "uploads_instant_total", protocol="tus") == 1
    assert delta(before, after, P + "uploads_finished_total", protocol="tus") == 1
    status = head(r.headers["Location"])
    assert status.headers["Upload-Offset"] == status.headers["Upload-Length"] == str(len(data))
    assert hashlib.sha256(download(second)).digest() == hashlib.sha256(data).digest()
    # the copy has the type this upload declared
    assert requests.get(second, timeout=30).headers["Content-Type"].startswith("text/plain")


def test_deleting_the_first_object_does_not_break_the_second(igw: GatewayProcess) -> None:
    data = os.urandom(MiB + 5)
    r1 = create(igw, data)
    h = {**TUS, **OCTET, "Upload-Offset": "0"}
    assert requests.patch(r1.headers["Location"], data=data, headers=h, timeout=60).ok
    r2 = create(igw, data)
    assert r2.headers["Upload-Offset"] == str(len(data))
    assert requests.delete(r1.headers["Location"], headers=TUS, timeout=30).status_code == 204
    assert download(r2.headers["X-Object-Url"]) == data
    # the first is out of the index, the second in it: a third copies the second
    r3 = create(igw, data)
    assert r3.headers["Upload-Offset"] == str(len(data))
    assert requests.delete(r2.headers["Location"], headers=TUS, timeout=30).status_code == 204
    assert requests.delete(r3.headers["Location"], headers=TUS, timeout=30).status_code == 204
    # nothing left: the next upload of these bytes must send them
    assert create(igw, data).headers["Upload-Offset"] == "0"


#: answer headers that name the upload or the moment, never the bytes
_OWN = {"Location", "Upload-Expires", "X-Request-Id", "Date"}


def _answer(r: requests.Response) -> tuple[int, dict[str, str]]:
    return r.status_code, {k: v for k, v in r.headers.items() if k not in _OWN}


def _store_requests(before: dict[Any, float], after: dict[Any, float]) -> dict[str, float]:
    """The store requests the gateway made between two scrapes, by operation."""
    name = P + "backend_request_duration_seconds_count"
    ops = {dict(labels)["operation"] for n, labels in after if n == name}
    return {op: n for op in sorted(ops) if (n := delta(before, after, name, operation=op))}


def _quiet(gw: GatewayProcess) -> dict[Any, float]:
    """A scrape once the store requests have stopped (a commit's clean-up,
    such as S3's listing of stray pieces, runs after its answer)."""
    last = scrape(gw.url)
    for _ in range(50):
        time.sleep(0.2)
        now = scrape(gw.url)
        if not _store_requests(last, now):
            return now
        last = now
    raise AssertionError("the gateway keeps making store requests")


def test_another_owner_does_not_match_and_cannot_tell(igw: GatewayProcess) -> None:
    data = os.urandom(MiB + 7)
    upload(igw, data, jwt_for("alice"))
    s0 = _quiet(igw)
    bob = create(igw, data, jwt_for("bob"))
    s1 = _quiet(igw)
    other = os.urandom(MiB + 7)
    never = create(igw, other, jwt_for("bob"))
    s2 = _quiet(igw)
    assert bob.headers["Upload-Offset"] == "0"
    # bob's answer for alice's bytes is the answer for bytes nobody has: the
    # same status and headers, and the same work behind it (the index is
    # asked for bob's objects only: alice's is never looked at, stat-ed or
    # copied), so no difference in time either
    assert _answer(bob) == _answer(never)
    assert _store_requests(s0, s1) == _store_requests(s1, s2)  # none at all on S3
    # and so for everything bob does next: his upload is an ordinary one
    for r, body in ((bob, data), (never, other)):
        h = {**TUS, **OCTET, "Upload-Offset": "0", **auth(jwt_for("bob"))}
        p = requests.patch(r.headers["Location"], data=body, headers=h, timeout=60)
        assert p.status_code == 204, p.text
    # anonymous uploads match only anonymous objects
    assert create(igw, data).headers["Upload-Offset"] == "0"
    alice = create(igw, data, jwt_for("alice"))
    assert alice.headers["Upload-Offset"] == str(len(data))
    assert download(alice.headers["X-Object-Url"]) == data


def test_a_bucket_wide_option_matches_every_credentialed_owner(target: Target) -> None:
    config = gateway_config(
        target,
        buckets={"default": {"backend": "default", "instant_upload": "bucket"}},
        access={"jwt": {"algorithms": ["HS256"], "secret": JWT_SECRET}},
    )
    data = os.urandom(MiB + 9)
    with GatewayProcess(config) as gw:
        upload(gw, data, jwt_for("carol"))
        dave = create(gw, data, jwt_for("dave"))
        assert dave.headers["Upload-Offset"] == str(len(data))
        assert download(dave.headers["X-Object-Url"]) == data
        # but anonymous uploads still match only anonymous objects
        assert create(gw, data).headers["Upload-Offset"] == "0"


def test_a_credential_with_a_mime_limit_is_never_instant(igw: GatewayProcess) -> None:
    data = os.urandom(MiB + 13)
    upload(igw, data, jwt_for("gina"))
    limited = bearer({"scope": "default", "mimeLimit": "image/*;application/*"}, sub="gina")
    assert create(igw, data, limited).headers["Upload-Offset"] == "0"
    assert create(igw, data, jwt_for("gina")).headers["Upload-Offset"] == str(len(data))


def test_a_wrong_length_or_digest_does_not_match(igw: GatewayProcess) -> None:
    data = os.urandom(MiB)
    upload(igw, data)
    h = {**TUS, "Repr-Digest": repr_digest(data)}
    r = requests.post(igw.files_url, headers={**h, "Upload-Length": str(len(data) + 1)})
    assert r.status_code == 201 and r.headers["Upload-Offset"] == "0"


def test_tuspy_ignoring_the_extension_ends_with_identical_bytes(
    igw: GatewayProcess, tmp_path: Path
) -> None:
    data = os.urandom(2 * MiB + 3)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    upload(igw, data)
    before = scrape(igw.url)
    client = tus_client.TusClient(igw.files_url, headers={"Repr-Digest": repr_digest(data)})
    uploader = client.uploader(str(path), chunk_size=MiB)
    uploader.upload()
    # a request is counted just after its answer: wait for the PATCH's
    after = scrape_when(igw.url, lambda now: _patches(before, now) >= 1)
    # tuspy PATCHes its first chunk anyway: answered complete at once, not stored
    assert delta(before, after, P + "uploads_instant_total", protocol="tus") == 1
    assert _patches(before, after) == 1
    final = head(uploader.url)
    assert download(final.headers["X-Object-Url"]) == data


@pytest.mark.parametrize(
    ("protocol", "during_creation"),
    [("tus-v1", False), ("tus-v1", True), ("ietf-draft-05", False)],
)
def test_tus_js_client_ignoring_the_extension_ends_with_identical_bytes(
    igw: GatewayProcess, tmp_path: Path, protocol: str, during_creation: bool
) -> None:
    data = os.urandom(3 * MiB + 1)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    upload(igw, data)
    before = scrape(igw.url)
    options = {
        "protocol": protocol,
        "headers": {"Repr-Digest": repr_digest(data)},
        "uploadDataDuringCreation": during_creation,
    }
    url = run_tus_js(igw.files_url, path, options)
    answered = 0 if during_creation or protocol != "tus-v1" else 1
    after = scrape_when(igw.url, lambda now: _patches(before, now) >= answered)
    assert delta(before, after, P + "uploads_instant_total") == 1
    if protocol == "tus-v1":
        # it sends its file once (in the creation or one PATCH at 0), answered
        # complete at once; the gateway stores none of it
        assert _patches(before, after) == (0 if during_creation else 1)
    final = head(url)
    assert final.headers["Upload-Offset"] == str(len(data))
    assert download(final.headers["X-Object-Url"]) == data


def test_uppy_in_chromium_ignoring_the_extension_ends_with_identical_bytes(
    igw: GatewayProcess, tmp_path: Path
) -> None:
    """The page hashes the file (WebCrypto) and gives Uppy the Repr-Digest
    header (cross-origin: the preflight must allow it); Uppy's tus plugin
    knows nothing of instant upload and PATCHes its first chunk."""
    data = os.urandom(3 * MiB + 5)
    path = tmp_path / "again.bin"
    path.write_bytes(data)
    upload(igw, data)
    before = scrape(igw.url)
    args = {"endpoint": igw.files_url, "token": None, "files": [str(path)], "chunkSize": MiB}
    result = run_browser_script("uppy_browser.mjs", json.dumps({**args, "digest": True}))
    after = scrape(igw.url)
    assert result["ok"], result.get("error")
    assert result["failed"] == [], result
    [done] = result["successful"]
    length = str(len(data))
    # created complete, then one PATCH of its first 1 MiB chunk (of three)
    # answered complete at once: whatever of that chunk had arrived is
    # discarded, the other chunks are never sent
    assert [(e["method"], e["status"], e["offset"]) for e in result["exchanges"]] == [
        ("POST", 201, length),
        ("PATCH", 204, length),
    ], result["exchanges"]
    assert delta(before, after, P + "uploads_instant_total", protocol="tus") == 1
    assert received(after, before) <= MiB
    final = head(done["url"])
    assert final.headers["Upload-Offset"] == length
    assert download(final.headers["X-Object-Url"]) == data


def test_the_cli_hashes_first_and_reports_an_instant_upload(
    igw: GatewayProcess, tmp_path: Path
) -> None:
    src = tmp_path / "photo.bin"
    src.write_bytes(os.urandom(4 * MiB + 1))
    resume = tmp_path / "r.json"
    [first] = run(src, "--endpoint", igw.url, resume_file=resume)
    assert first["instant"] is False
    before = scrape(igw.url)
    [second] = run(src, "--endpoint", igw.url, resume_file=resume)
    after = scrape(igw.url)
    assert second["instant"] is True and second["resumed_from"] == 0
    assert received(after, before) == 0
    assert delta(before, after, P + "requests_total", method="PATCH") == 0
    assert second["url"] != first["url"]
    assert download(second["url"]) == src.read_bytes()


def test_a_file_first_uploaded_with_the_qiniu_sdk_is_instant_over_tus(target: Target) -> None:
    data = os.urandom(5 * MiB + 3)  # two Qiniu blocks
    with GatewayProcess(qiniu_config(target)) as gw:
        up = qiniu_token("from-qiniu.bin", bucket="default", endUser="erin")
        _, info = qiniu.put_data(up, "from-qiniu.bin", data, regions=[region(gw)])
        assert info.status_code == 200, info
        mine = create(gw, data, qiniu_token(bucket="default", endUser="erin"))
        assert mine.headers["Upload-Offset"] == str(len(data))
        assert download(mine.headers["X-Object-Url"]) == data
        theirs = create(gw, data, qiniu_token(bucket="default", endUser="frank"))
        assert theirs.headers["Upload-Offset"] == "0"
