"""What a put policy decides on the bytes and at the finish of a tus upload,
not only at its creation: ``insertOnly`` when the object is made (an object
made at the key meanwhile is not replaced: 403, nothing committed) and
``mimeLimit`` on the first bytes (415 before the store gets them) — raw
requests and tuspy, on every backend target."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
import requests
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError

from tests.access.support import auth, tus_create, uptoken
from tests.tus.helpers import OCTET, TUS
from testservers.gateway import GatewayProcess

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
HTML = b"<!DOCTYPE html><html><script>alert(1)</script></html>" + b" " * 1000


def _md(**items: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


def _patch(url: str, token: str, offset: int, data: bytes) -> requests.Response:
    headers = {**TUS, **OCTET, "Upload-Offset": str(offset), **auth(token)}
    return requests.patch(url, data=data, headers=headers, timeout=60)


def _head(url: str, token: str) -> requests.Response:
    return requests.head(url, headers={**TUS, **auth(token)}, timeout=30)


def _upload(agw: GatewayProcess, token: str, data: bytes) -> str:
    """A finished tus upload of ``data``; its object URL."""
    r = tus_create(agw.files_url, len(data), token)
    assert r.status_code == 201, r.text
    r = _patch(r.headers["Location"], token, 0, data)
    assert r.status_code == 204, r.text
    return str(r.headers["X-Object-Url"])


def test_insert_only_is_checked_when_the_upload_finishes(agw: GatewayProcess) -> None:
    key = f"late/{os.urandom(4).hex()}.bin"
    # a bucket scope naming the key by saveKey: may not replace an object
    slow = uptoken(saveKey=key)
    r = tus_create(agw.files_url, 6, slow)
    assert r.status_code == 201, r.text  # the key is free now
    url = r.headers["Location"]
    assert _patch(url, slow, 0, b"abc").status_code == 204
    # meanwhile another upload makes the object (a bucket:key token may replace)
    object_url = _upload(agw, uptoken(key=key), b"theirs")
    r = _patch(url, slow, 3, b"def")
    assert (r.status_code, r.text.strip()) == (403, f"file exists: {key}")
    assert requests.get(object_url, timeout=30).content == b"theirs"
    assert _head(url, slow).status_code == 410  # its bytes are discarded
    # with the key still free, an insert-only upload finishes as before
    other = f"late/{os.urandom(4).hex()}.bin"
    object_url = _upload(agw, uptoken(saveKey=other), b"mine")
    assert requests.get(object_url, timeout=30).content == b"mine"


def test_insert_only_at_finish_of_a_concatenation(agw: GatewayProcess) -> None:
    key = f"late/{os.urandom(4).hex()}.bin"
    token = uptoken(saveKey=key, endUser="carol")
    partial = {**TUS, "Upload-Length": "3", "Upload-Concat": "partial", **auth(token)}
    part = requests.post(agw.files_url, headers=partial, timeout=30).headers["Location"]
    final = {**TUS, "Upload-Concat": f"final;{part}", **auth(token)}
    r = requests.post(agw.files_url, headers=final, timeout=30)
    assert r.status_code == 201, r.text
    final_url = r.headers["Location"]
    _upload(agw, uptoken(key=key), b"theirs")
    # the last byte of the part makes the final: refused, the object stays
    r = _patch(part, token, 0, b"abc")
    assert r.status_code in (204, 403), r.text
    assert _head(final_url, token).status_code == 410
    r = requests.get(agw.url + f"/objects/default/{key}", timeout=30)
    assert r.content == b"theirs"


def test_mime_limit_is_checked_on_the_first_bytes(agw: GatewayProcess) -> None:
    images = uptoken(mimeLimit="image/*")
    # a declared type the limit forbids is refused at creation
    r = tus_create(agw.files_url, 5, images, _md(filetype="text/html"))
    assert r.status_code == 415
    # a type declared allowed, HTML bytes: refused before the store gets them
    r = tus_create(agw.files_url, len(HTML), images, _md(filetype="image/png"))
    assert r.status_code == 201
    url = r.headers["Location"]
    r = _patch(url, images, 0, HTML)
    assert r.status_code == 415, r.text
    assert "text/html" in r.text
    assert _head(url, images).headers["Upload-Offset"] == "0"
    # a first write too short to show the type is judged again with the next
    # one ("<" alone is plain text)
    texts = uptoken(mimeLimit="text/plain")
    r = tus_create(agw.files_url, len(HTML), texts)
    url = r.headers["Location"]
    assert _patch(url, texts, 0, HTML[:1]).status_code == 204
    r = _patch(url, texts, 1, HTML[1:])
    assert r.status_code == 415, r.text
    assert _head(url, texts).headers["Upload-Offset"] == "1"
    # no declared type: the bytes decide
    r = tus_create(agw.files_url, len(PNG), images)
    assert r.status_code == 201
    r = _patch(r.headers["Location"], images, 0, PNG)
    assert r.status_code == 204, r.text
    assert requests.get(r.headers["X-Object-Url"], timeout=30).content == PNG
    # creation with a body: refused before the upload exists
    headers = {**TUS, **OCTET, "Upload-Length": str(len(HTML)), **auth(images)}
    r = requests.post(agw.files_url, data=HTML, headers=headers, timeout=30)
    assert r.status_code == 415 and "Location" not in r.headers
    headers["Upload-Length"] = str(len(PNG))
    r = requests.post(agw.files_url, data=PNG, headers=headers, timeout=30)
    assert r.status_code == 201 and r.headers["Upload-Offset"] == str(len(PNG))


def test_tuspy_under_a_mime_limit(agw: GatewayProcess, tmp_path: Path) -> None:
    """tuspy declares no type: an image passes, a page does not."""
    client = tus.TusClient(agw.files_url, headers=auth(uptoken(mimeLimit="image/*")))
    photo, page = tmp_path / "photo.png", tmp_path / "page.png"
    photo.write_bytes(PNG)
    page.write_bytes(HTML)
    uploader = client.uploader(str(photo), chunk_size=1024)
    uploader.upload()
    assert requests.get(uploader.url, headers=client.headers, timeout=30).content == PNG
    uploader = client.uploader(str(page), chunk_size=1024, retries=0)
    with pytest.raises(TusCommunicationError) as refused:
        uploader.upload()
    assert refused.value.status_code == 415
