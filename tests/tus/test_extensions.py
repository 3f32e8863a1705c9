"""tus extensions: checksum, concatenation(-unfinished), expiration, limits, public URL."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import zlib
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import gateway_config
from tests.support.targets import Target
from tests.tus.helpers import TUS, create, download, head, offset_of, patch
from testservers.gateway import GatewayProcess


def _digest(algorithm: str, data: bytes) -> str:
    if algorithm == "crc32":
        raw = zlib.crc32(data).to_bytes(4, "big")
    else:
        raw = hashlib.new(algorithm, data).digest()
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256", "crc32"])
def test_checksum_accepted_and_mismatch_is_460(gateway: GatewayProcess, algorithm: str) -> None:
    data = os.urandom(70_000)
    url = create(gateway.files_url, len(data))
    good = f"{algorithm} {_digest(algorithm, data[:30_000])}"
    r = patch(url, 0, data[:30_000], **{"Upload-Checksum": good})
    assert r.status_code == 204
    bad = f"{algorithm} {_digest(algorithm, b'something else')}"
    r = patch(url, 30_000, data[30_000:], **{"Upload-Checksum": bad})
    assert r.status_code == 460
    assert offset_of(url) == 30_000  # chunk discarded
    right = f"{algorithm} {_digest(algorithm, data[30_000:])}"
    assert patch(url, 30_000, data[30_000:], **{"Upload-Checksum": right}).status_code == 204
    assert download(url) == data


def test_a_refused_last_patch_makes_no_object(gateway: GatewayProcess) -> None:
    """The whole (small) upload in one PATCH whose checksum does not match:
    no store may have made the object from those bytes meanwhile (S3's one
    PutObject, Swift's plain PUT): its key holds nothing until the right
    bytes come."""
    data = os.urandom(100_000)
    url = create(gateway.files_url, len(data))
    key = url.rstrip("/").rsplit("/", 1)[-1]
    bad = f"sha256 {_digest('sha256', b'something else')}"
    assert patch(url, 0, data, **{"Upload-Checksum": bad}).status_code == 460
    assert offset_of(url) == 0
    assert requests.get(f"{gateway.url}/objects/default/{key}", timeout=30).status_code == 404
    good = f"sha256 {_digest('sha256', data)}"
    assert patch(url, 0, data, **{"Upload-Checksum": good}).status_code == 204
    got = requests.get(f"{gateway.url}/objects/default/{key}", timeout=30)
    assert got.status_code == 200 and got.content == data


def test_unsupported_checksum_algorithm_is_400(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, 3)
    r = patch(url, 0, b"abc", **{"Upload-Checksum": "whirlpool AAAA"})
    assert r.status_code == 400
    r = patch(url, 0, b"abc", **{"Upload-Checksum": "sha1 not*base64"})
    assert r.status_code == 400
    assert offset_of(url) == 0


def _partial(gateway: GatewayProcess, data: bytes) -> str:
    url = create(gateway.files_url, len(data), **{"Upload_Concat": "partial"})
    return url


def test_concatenation_of_finished_partials(gateway: GatewayProcess) -> None:
    pieces = [os.urandom(100_000), os.urandom(1), os.urandom(250_000)]
    urls = []
    for piece in pieces:
        url = _partial(gateway, piece)
        assert head(url).headers["Upload-Concat"] == "partial"
        assert patch(url, 0, piece).status_code == 204
        urls.append(url)
    # relative and absolute URLs are both accepted
    concat = f"final;{urls[0]} {urls[1].replace(gateway.url, '')} {urls[2]}"
    r = requests.post(
        gateway.files_url,
        headers={**TUS, "Upload-Concat": concat, "Upload-Metadata": "filename YWxsLmJpbg=="},
        timeout=30,
    )
    assert r.status_code == 201
    final = r.headers["Location"]
    h = head(final)
    assert h.status_code == 200
    assert h.headers["Upload-Length"] == str(sum(map(len, pieces)))
    assert h.headers["Upload-Offset"] == h.headers["Upload-Length"]
    assert h.headers["Upload-Concat"].startswith("final;")
    assert "X-Object-Url" in h.headers
    assert download(final) == b"".join(pieces)
    r = patch(final, 0, b"x")
    assert r.status_code == 403
    # the partials' storage is discarded after the answer; then they are gone
    deadline = time.monotonic() + 20
    while any(head(u).status_code != 410 for u in urls) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [head(u).status_code for u in urls] == [410, 410, 410]
    assert download(final) == b"".join(pieces)


def test_final_with_length_or_foreign_url_is_400(gateway: GatewayProcess) -> None:
    url = _partial(gateway, b"x")
    r = requests.post(
        gateway.files_url,
        headers={**TUS, "Upload-Concat": f"final;{url}", "Upload-Length": "1"},
        timeout=10,
    )
    assert r.status_code == 400
    r = requests.post(
        gateway.files_url,
        headers={**TUS, "Upload-Concat": "final;http://elsewhere.example/other/abc"},
        timeout=10,
    )
    assert r.status_code == 400
    plain = create(gateway.files_url, 1)
    r = requests.post(
        gateway.files_url, headers={**TUS, "Upload-Concat": f"final;{plain}"}, timeout=10
    )
    assert r.status_code == 400  # not a partial upload


def test_concatenation_unfinished(gateway: GatewayProcess) -> None:
    a, b = os.urandom(40_000), os.urandom(60_000)
    ua, ub = _partial(gateway, a), _partial(gateway, b)
    assert patch(ua, 0, a[:10]).status_code == 204
    r = requests.post(
        gateway.files_url, headers={**TUS, "Upload-Concat": f"final;{ua} {ub}"}, timeout=10
    )
    assert r.status_code == 201
    final = r.headers["Location"]
    h = head(final)
    assert h.status_code == 200
    assert "Upload-Offset" not in h.headers  # not assembled yet
    assert h.headers["Upload-Length"] == str(len(a) + len(b))
    assert requests.get(final, timeout=10).status_code == 409
    assert patch(ua, 10, a[10:]).status_code == 204
    assert patch(ub, 0, b).status_code == 204
    h = head(final)
    assert h.headers["Upload-Offset"] == str(len(a) + len(b))
    assert download(final) == a + b


def test_concatenation_of_deferred_partials(gateway: GatewayProcess) -> None:
    a, b = b"first-", b"second"
    ua = create(gateway.files_url, None, **{"Upload_Concat": "partial"})
    ub = create(gateway.files_url, None, **{"Upload_Concat": "partial"})
    r = requests.post(
        gateway.files_url, headers={**TUS, "Upload-Concat": f"final;{ua} {ub}"}, timeout=10
    )
    final = r.headers["Location"]
    assert "Upload-Length" not in head(final).headers
    assert patch(ua, 0, a, **{"Upload-Length": str(len(a))}).status_code == 204
    assert patch(ub, 0, b, **{"Upload-Length": str(len(b))}).status_code == 204
    assert download(final) == a + b


@pytest.fixture(scope="module")
def limited_gateway(target: Target) -> Iterator[GatewayProcess]:
    config = gateway_config(
        target,
        server={"max_upload_size": 1000, "public_url": "https://up.example.com"},
        uploads={"expire_after": 2, "sweep_interval": 0.5, "tombstone_ttl": 3600},
    )
    with GatewayProcess(config) as gw:
        yield gw


def _local_files(gw: GatewayProcess) -> str:
    return gw.url + "/files/"


def test_max_size_is_advertised_and_enforced(limited_gateway: GatewayProcess) -> None:
    files = _local_files(limited_gateway)
    r = requests.options(files, timeout=10)
    assert r.headers["Tus-Max-Size"] == "1000"
    r = requests.post(files, headers={**TUS, "Upload-Length": "1001"}, timeout=10)
    assert r.status_code == 413
    r = requests.post(files, headers={**TUS, "Upload-Defer-Length": "1"}, timeout=10)
    assert r.status_code == 201
    url = files + r.headers["Location"].rsplit("/", 1)[1]
    r = patch(url, 0, b"x" * 1001)
    assert r.status_code == 413
    assert offset_of(url) == 0


def test_public_url_is_used_for_location(limited_gateway: GatewayProcess) -> None:
    r = requests.post(
        _local_files(limited_gateway),
        headers={**TUS, "Upload-Length": "5", "X-Forwarded-Host": "ignored.example"},
        timeout=10,
    )
    assert r.headers["Location"].startswith("https://up.example.com/files/")


def test_expired_upload_is_gone_and_swept(limited_gateway: GatewayProcess, target: Target) -> None:
    files = _local_files(limited_gateway)
    r = requests.post(files, headers={**TUS, "Upload-Length": "10"}, timeout=10)
    upload_id = r.headers["Location"].rsplit("/", 1)[1]
    url = files + upload_id
    assert patch(url, 0, b"12345").status_code == 204
    time.sleep(3.5)
    r = head(url)
    assert r.status_code == 410
    assert "Upload-Offset" not in r.headers
    assert patch(url, 5, b"67890").status_code == 410
    if target.name == "local":
        stream_file = target.root / "data" / "streams" / upload_id
        deadline = time.time() + 5
        while stream_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert not stream_file.exists(), "the sweeper did not delete the expired data"
    assert target.leftovers() == []


def _chunked_patch_with_trailer(
    gw: GatewayProcess, url: str, offset: int, data: bytes, trailer: str | None
) -> int:
    import socket

    path = url.replace(gw.url, "")
    with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as s:
        head = (
            f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
            "Transfer-Encoding: chunked\r\nTrailer: Upload-Checksum\r\nConnection: close\r\n\r\n"
        )
        body = b""
        for i in range(0, len(data), 7000):
            piece = data[i : i + 7000]
            body += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        body += (
            b"0\r\n" + (f"Upload-Checksum: {trailer}\r\n".encode() if trailer else b"") + b"\r\n"
        )
        s.sendall(head.encode() + body)
        reply = s.recv(4096).decode("latin-1")
    return int(reply.split(" ", 2)[1])


def test_checksum_trailer(gateway: GatewayProcess) -> None:
    r = requests.options(gateway.files_url, timeout=10)
    assert "checksum-trailer" in r.headers["Tus-Extension"].split(",")
    data = os.urandom(50_000)
    url = create(gateway.files_url, len(data))
    bad = f"sha1 {_digest('sha1', b'nope')}"
    assert _chunked_patch_with_trailer(gateway, url, 0, data[:20_000], bad) == 460
    assert offset_of(url) == 0
    assert _chunked_patch_with_trailer(gateway, url, 0, data[:20_000], None) == 400
    assert offset_of(url) == 0
    good = f"sha256 {_digest('sha256', data[:20_000])}"
    assert _chunked_patch_with_trailer(gateway, url, 0, data[:20_000], good) == 204
    assert offset_of(url) == 20_000
    crc = f"crc32 {_digest('crc32', data[20_000:])}"
    assert _chunked_patch_with_trailer(gateway, url, 20_000, data[20_000:], crc) == 204
    assert download(url) == data
