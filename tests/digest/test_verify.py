"""The declared digest verified at the last byte over raw tus: a right one
finishes the upload with its SHA-256 recorded; a wrong one is refused (460)
with nothing committed, and the upload says so from then on. Plain,
deferred-length and concatenated uploads, on every target."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
import requests

from gateway.core.digests import REJECTED, SHA256, STATE
from tests.conftest import gateway_config
from tests.digest.helpers import record_of, repr_digest, stored_sha256
from tests.support.targets import Target
from tests.tus.helpers import TUS, create, download, head, patch
from testservers.gateway import GatewayProcess

DATA = os.urandom(300_000)
WRONG = repr_digest(b"something else")


def object_url(gw: GatewayProcess, url: str) -> str:
    return f"{gw.url}/objects/default/{url.rsplit('/', 1)[1]}"


def test_right_digest_finishes_with_sha256_recorded(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, len(DATA), Repr_Digest=repr_digest(DATA, "sha-256", "sha-512"))
    assert patch(url, 0, DATA[:100_000]).status_code == 204
    middle = record_of(gateway, url)
    assert middle.extra[STATE]["offset"] == 100_000  # saved with the offset it is of
    assert patch(url, 100_000, DATA[100_000:]).status_code == 204
    record = record_of(gateway, url)
    assert record.extra[SHA256] == hashlib.sha256(DATA).hexdigest()
    assert STATE not in record.extra
    assert download(object_url(gateway, url)) == DATA


def test_sha256_is_recorded_without_a_declared_digest(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, len(DATA))
    assert patch(url, 0, DATA).status_code == 204
    assert record_of(gateway, url).extra[SHA256] == hashlib.sha256(DATA).hexdigest()
    empty = create(gateway.files_url, 0)
    assert record_of(gateway, empty).extra[SHA256] == hashlib.sha256(b"").hexdigest()


def test_wrong_digest_is_460_and_nothing_is_committed(
    gateway: GatewayProcess, target: Target
) -> None:
    url = create(gateway.files_url, len(DATA), Repr_Digest=WRONG)
    assert patch(url, 0, DATA[:1000]).status_code == 204  # not complete: nothing checked yet
    r = patch(url, 1000, DATA[1000:])
    assert r.status_code == 460, (r.status_code, r.text)
    assert "Repr-Digest mismatch" in r.text and r.text.count("\n") == 1
    assert head(url).status_code == 460  # from then on
    again = patch(url, len(DATA), b"")
    assert again.status_code == 460
    assert requests.get(object_url(gateway, url), timeout=30).status_code == 404
    assert REJECTED in record_of(gateway, url).extra
    assert target.leftovers() == []  # its bytes were discarded


def test_wrong_digest_in_creation_with_upload(gateway: GatewayProcess) -> None:
    headers = {
        **TUS,
        "Upload-Length": str(len(DATA)),
        "Repr-Digest": WRONG,
        "Content-Type": "application/offset+octet-stream",
    }
    r = requests.post(gateway.files_url, data=DATA, headers=headers, timeout=60)
    assert r.status_code == 460, (r.status_code, r.text)


def test_deferred_length_is_verified_when_the_length_is_declared(gateway: GatewayProcess) -> None:
    good = create(gateway.files_url, None, Repr_Digest=repr_digest(DATA))
    assert patch(good, 0, DATA[:5000]).status_code == 204
    r = patch(good, 5000, DATA[5000:], **{"Upload-Length": str(len(DATA))})
    assert r.status_code == 204, r.text
    assert record_of(gateway, good).extra[SHA256] == hashlib.sha256(DATA).hexdigest()
    bad = create(gateway.files_url, None, Repr_Digest=WRONG)
    assert patch(bad, 0, DATA[:5000]).status_code == 204
    r = patch(bad, 5000, DATA[5000:], **{"Upload-Length": str(len(DATA))})
    assert r.status_code == 460
    assert requests.get(object_url(gateway, bad), timeout=30).status_code == 404


def _partials(gw: GatewayProcess, pieces: list[bytes]) -> list[str]:
    urls = []
    for piece in pieces:
        url = create(gw.files_url, len(piece), Upload_Concat="partial")
        assert patch(url, 0, piece).status_code == 204
        urls.append(url)
    return urls


def test_concatenation_is_verified_over_the_whole(gateway: GatewayProcess, target: Target) -> None:
    pieces = [DATA[:100_000], DATA[100_000:250_000], DATA[250_000:]]
    urls = _partials(gateway, pieces)
    headers = {**TUS, "Upload-Concat": "final;" + " ".join(urls), "Repr-Digest": repr_digest(DATA)}
    r = requests.post(gateway.files_url, headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    final = r.headers["Location"]
    assert record_of(gateway, final).extra[SHA256] == hashlib.sha256(DATA).hexdigest()
    assert download(object_url(gateway, final)) == DATA
    # kept with the object (S3: x-amz-meta-sha256 of the copy)
    assert stored_sha256(gateway, final.rsplit("/", 1)[1]) == hashlib.sha256(DATA).hexdigest()

    urls = _partials(gateway, pieces)
    headers = {**TUS, "Upload-Concat": "final;" + " ".join(urls), "Repr-Digest": WRONG}
    r = requests.post(gateway.files_url, headers=headers, timeout=60)
    assert r.status_code == 460, r.text
    deadline = time.monotonic() + 30  # the partials are released after the answer
    while any(head(u).status_code != 410 for u in urls):
        assert time.monotonic() < deadline, [head(u).status_code for u in urls]
        time.sleep(0.2)


def test_unfinished_concatenation_is_refused_when_its_last_part_completes(
    gateway: GatewayProcess,
) -> None:
    first = _partials(gateway, [DATA[:1000]])[0]
    second = create(gateway.files_url, len(DATA) - 1000, Upload_Concat="partial")
    headers = {**TUS, "Upload-Concat": f"final;{first} {second}", "Repr-Digest": WRONG}
    r = requests.post(gateway.files_url, headers=headers, timeout=60)
    assert r.status_code == 201
    final = r.headers["Location"]
    assert patch(second, 0, DATA[1000:]).status_code == 204
    assert head(final).status_code == 460
    assert requests.get(object_url(gateway, final), timeout=30).status_code == 404


def test_the_store_keeps_the_sha256_where_it_can(gateway: GatewayProcess, target: Target) -> None:
    """Local disk: an xattr; Swift: object metadata on the manifest; S3:
    ``x-amz-meta-sha256`` on objects it makes by a copy (a declared upload of
    one part, verified on a temporary key; an instant upload's copy) or with
    one PutObject as the last bytes arrive (a plain upload of one part), not
    on one past a part (its multipart upload opened before its digest was
    known); FastDFS: the key's mapping in the gateway's KV (beside the file
    id and the content type)."""
    other, big = os.urandom(len(DATA)), os.urandom(8 * 1024 * 1024 + 1)  # > an S3 part
    plain = create(gateway.files_url, len(DATA))
    assert patch(plain, 0, DATA).status_code == 204
    large = create(gateway.files_url, len(big))
    assert patch(large, 0, big).status_code == 204
    declared = create(gateway.files_url, len(other), Repr_Digest=repr_digest(other))
    assert patch(declared, 0, other).status_code == 204
    # the plain upload's bytes again: made at creation by a copy in the store
    instant = create(gateway.files_url, len(DATA), Repr_Digest=repr_digest(DATA))
    assert head(instant).headers["Upload-Offset"] == str(len(DATA))
    uploads = {
        "plain": (plain, DATA),
        "large": (large, big),
        "declared": (declared, other),
        "instant": (instant, DATA),
    }
    want = {name: hashlib.sha256(data).hexdigest() for name, (_, data) in uploads.items()}
    for name, (url, _) in uploads.items():
        assert record_of(gateway, url).extra[SHA256] == want[name]
    kept = {
        name: stored_sha256(gateway, url.rsplit("/", 1)[1]) for name, (url, _) in uploads.items()
    }
    if target.name.startswith("s3"):
        assert kept == {**want, "large": None}
    else:
        assert target.name in ("local", "swift", "fastdfs")
        assert kept == want
    for name, (url, data) in uploads.items():
        r = requests.get(object_url(gateway, url), timeout=60)
        assert r.content == data
        if kept[name] is not None:
            # served as the object's Repr-Digest by the gateway (Swift itself
            # sends its metadata from a temp URL)
            served = r.headers.get("Repr-Digest") == repr_digest(data)
            assert served or r.headers.get("X-Object-Meta-Sha256") == want[name], r.headers


def test_a_bucket_with_digest_off_hashes_only_declared_uploads(target: Target) -> None:
    if target.name != "local":
        pytest.skip("configuration, not storage: one target is enough")
    config = gateway_config(target, buckets={"default": {"backend": "default", "digest": "off"}})
    with GatewayProcess(config) as gw:
        plain = create(gw.files_url, len(DATA))
        assert patch(plain, 0, DATA).status_code == 204
        assert SHA256 not in record_of(gw, plain).extra
        assert STATE not in record_of(gw, plain).extra
        declared = create(gw.files_url, len(DATA), Repr_Digest=WRONG)
        assert patch(declared, 0, DATA).status_code == 460
