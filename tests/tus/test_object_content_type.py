"""A finished tus upload's object carries the content type its client declared
in ``Upload-Metadata`` (``filetype``): fetched from the ``X-Object-Url`` the
gateway returns, whatever serves it (a presigned S3 URL, a Swift temp URL,
the gateway's ``/objects`` route for local and FastDFS)."""

from __future__ import annotations

import os
from pathlib import Path

import requests
from tusclient import client as tus

from tests.tus.helpers import TUS, create, head, patch
from testservers.gateway import GatewayProcess

MiB = 1024 * 1024


def _object(upload_url: str) -> requests.Response:
    h = head(upload_url)
    assert h.status_code == 200, h.status_code
    got = requests.get(h.headers["X-Object-Url"], timeout=60)
    assert got.status_code == 200, (got.status_code, got.text)
    return got


def test_tuspy_filetype_becomes_the_objects_content_type(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    data = os.urandom(6 * MiB + 123)  # parts and a tail on S3
    path = tmp_path / "picture.png"
    path.write_bytes(data)
    uploader = tus.TusClient(gateway.files_url).uploader(
        str(path), chunk_size=2 * MiB, metadata={"filename": path.name, "filetype": "image/png"}
    )
    uploader.upload()
    got = _object(uploader.url)
    assert got.headers["Content-Type"] == "image/png"
    assert got.content == data


def test_empty_upload_gets_its_filetype(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, 0, {"filetype": "image/png"})
    got = _object(url)
    assert got.headers["Content-Type"] == "image/png"
    assert got.content == b""


def test_final_upload_uses_its_own_filetype(gateway: GatewayProcess) -> None:
    pieces = [os.urandom(1000), os.urandom(2000)]
    urls = []
    for piece in pieces:
        url = create(
            gateway.files_url, len(piece), {"filetype": "text/plain"}, Upload_Concat="partial"
        )
        assert patch(url, 0, piece).status_code == 204
        urls.append(url)
    r = requests.post(
        gateway.files_url,
        headers={
            **TUS,
            "Upload-Concat": "final;" + " ".join(urls),
            "Upload-Metadata": "filetype aW1hZ2UvcG5n",  # image/png
        },
        timeout=30,
    )
    assert r.status_code == 201, (r.status_code, r.text)
    got = _object(r.headers["Location"])
    assert got.headers["Content-Type"] == "image/png"
    assert got.content == b"".join(pieces)


def test_a_malformed_filetype_is_ignored(gateway: GatewayProcess) -> None:
    for bogus in ("image/png\r\nX-Injected: 1", "not a type", "text/html; charset=utf-8\x01"):
        url = create(gateway.files_url, 3, {"filetype": bogus})
        assert patch(url, 0, b"abc").status_code == 204
        got = _object(url)
        assert got.content == b"abc"
        assert "X-Injected" not in got.headers
        assert got.headers.get("Content-Type") not in ("image/png", bogus)
