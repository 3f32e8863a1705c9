"""Class 6 of issue 15: content types and file names from clients are held
to a safe grammar and length before they are stored (anything else:
``application/octet-stream`` / no file name), and the gateway serves objects
with ``nosniff`` and ``Content-Disposition: attachment`` unless the type is
on the inline allow-list — HTML and SVG never inline by default. Driven by
the official Qiniu SDK and tuspy."""

from __future__ import annotations

import base64
import hashlib
import io
import os

import pytest
import qiniu
import requests
from tusclient import client as tus

from gateway.config import ConfigError, load_config
from gateway.content_types import DEFAULT_INLINE, content_type, file_name, is_inline
from tests.qiniu.harness import region, token
from testservers.gateway import GatewayProcess

UNSAFE_TYPES = {
    "crlf": "text/plain\r\nX-Injected: 1",
    "lf": "image/png\nx",
    "huge": "a/" + "b" * 100_000,
    "nul": "text/plain\x00",
    "no-slash": "texthtml",
    "bad-param": "text/plain; charset=utf-8\r\n",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_grammar() -> None:
    for value in UNSAFE_TYPES.values():
        assert content_type(value) is None, value
    for value in (
        "image/png",
        "text/plain; charset=utf-8",
        'a/b; x="y z"',
        "application/vnd.a+json",
    ):
        assert content_type(value) == value
    assert file_name("report (1).pdf") == "report (1).pdf"
    assert file_name("a\nb") is None and file_name("x" * 256) is None and file_name("") is None


def test_inline_allow_list() -> None:
    for inline in (
        "image/png",
        "video/mp4",
        "audio/ogg",
        "application/pdf",
        "text/plain; charset=utf-8",
    ):
        assert is_inline(inline, DEFAULT_INLINE), inline
    for attachment in (
        "text/html",
        "image/svg+xml",
        "application/xhtml+xml",
        "text/xml",
        "application/octet-stream",
    ):
        assert not is_inline(attachment, DEFAULT_INLINE), attachment
    assert is_inline("text/html", ["text/html"])  # an operator's explicit choice
    with pytest.raises(ConfigError, match="inline_types"):
        load_config({"server": {"inline_types": ["text/html\r\n"]}})


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _v1_upload(gw: GatewayProcess, key: str, data: bytes, mime: str) -> requests.Response:
    """mkblk + mkfile by hand: the mimeType travels base64-encoded in the path."""
    auth = {"Authorization": f"UpToken {token()}"}
    block = requests.post(f"{gw.url}/mkblk/{len(data)}", data=data, headers=auth, timeout=30)
    assert block.status_code == 200, block.text
    path = f"/mkfile/{len(data)}/key/{_b64(key)}/mimeType/{_b64(mime)}"
    return requests.post(gw.url + path, data=block.json()["ctx"], headers=auth, timeout=30)


def _v2_upload(gw: GatewayProcess, key: str, data: bytes, mime: str) -> requests.Response:
    """init + one part + complete: the mimeType travels in the JSON body."""
    auth = {"Authorization": f"UpToken {token()}"}
    base = f"{gw.url}/buckets/photos/objects/{_b64(key)}/uploads"
    upload_id = requests.post(base, headers=auth, timeout=30).json()["uploadId"]
    part = requests.put(f"{base}/{upload_id}/1", data=data, headers=auth, timeout=30)
    assert part.status_code == 200, part.text
    body = {"parts": [{"partNumber": 1, "etag": part.json()["etag"]}], "mimeType": mime}
    return requests.post(f"{base}/{upload_id}", json=body, headers=auth, timeout=30)


def _form_upload(gw: GatewayProcess, key: str, data: bytes, mime: str) -> requests.Response:
    """A form upload by hand: the mimeType travels as a multipart field."""
    fields = {"token": token(), "key": key, "mimeType": mime}
    return requests.post(gw.url + "/", data=fields, files={"file": ("f.bin", data)}, timeout=30)


UPLOADS = {"v1": _v1_upload, "v2": _v2_upload, "form": _form_upload}


@pytest.mark.parametrize("protocol", list(UPLOADS))
@pytest.mark.parametrize("name", list(UNSAFE_TYPES))
def test_unsafe_qiniu_mime_type_is_never_stored(
    hgw: GatewayProcess, name: str, protocol: str
) -> None:
    data = os.urandom(3000)
    key = f"mime-{protocol}-{name}"
    r = UPLOADS[protocol](hgw, key, data, UNSAFE_TYPES[name])
    if protocol == "v1" and name == "huge":
        assert r.status_code == 400  # a 133 KB path: aiohttp's own request-line limit
        return
    if protocol == "form" and name == "huge":
        assert r.status_code == 400 and "too large" in r.json()["error"], r.text
        return
    assert r.status_code == 200, r.text
    assert r.json()["key"] == key
    got = requests.get(r.json()["url"], timeout=30)
    assert got.status_code == 200 and _sha(got.content) == _sha(data)
    served = requests.get(f"{hgw.url}/objects/photos/{key}", timeout=30)
    assert served.status_code == 200 and _sha(served.content) == _sha(data)
    assert served.headers["Content-Type"] == "application/octet-stream"
    assert "X-Injected" not in served.headers
    assert served.headers["Content-Disposition"] == "attachment"


@pytest.mark.parametrize(
    ("mime", "disposition"),
    [
        ("text/html", "attachment"),
        ("image/svg+xml", "attachment"),
        ("image/png", "inline"),
        ("application/pdf", "inline"),
        ("text/plain", "inline"),
    ],
)
def test_served_from_the_gateway_origin(hgw: GatewayProcess, mime: str, disposition: str) -> None:
    body = b"<html><script>alert(document.cookie)</script></html>"
    key = f"served-{mime.replace('/', '-')}"
    _, info = qiniu.put_data(token(), key, body, mime_type=mime, regions=[region(hgw)])
    assert info.status_code == 200, info
    served = requests.get(f"{hgw.url}/objects/photos/{key}", timeout=30)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == mime
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Disposition"] == disposition


def test_html_sniffed_by_detect_mime_is_an_attachment(hgw: GatewayProcess) -> None:
    body = b"<!DOCTYPE html><html><script>alert(1)</script></html>"
    _, info = qiniu.put_data(token(detectMime=1), "sniffed-html", body, regions=[region(hgw)])
    assert info.status_code == 200, info
    served = requests.get(f"{hgw.url}/objects/photos/sniffed-html", timeout=30)
    assert served.headers["Content-Type"] == "text/html"
    assert served.headers["Content-Disposition"] == "attachment"


@pytest.mark.parametrize(
    ("filetype", "filename", "expected_type", "expected_disposition"),
    [
        (
            "text/html",
            "x.html",
            "text/html",
            "attachment; filename=\"x.html\"; filename*=UTF-8''x.html",
        ),
        ("image/png\r\nX-Injected: 1", "a\r\nb.png", "application/octet-stream", "attachment"),
        ("image/png", "n" * 300, "image/png", "inline"),
        (
            "image/png",
            "photo é.png",
            "image/png",
            "inline; filename=\"photo _.png\"; filename*=UTF-8''photo%20%C3%A9.png",
        ),
    ],
)
def test_tus_filetype_and_filename(
    hgw: GatewayProcess,
    filetype: str,
    filename: str,
    expected_type: str,
    expected_disposition: str,
) -> None:
    data = os.urandom(5000)
    uploader = tus.TusClient(hgw.files_url).uploader(
        file_stream=io.BytesIO(data), metadata={"filetype": filetype, "filename": filename}
    )
    uploader.upload()
    assert uploader.url is not None
    object_url = requests.head(uploader.url, headers={"Tus-Resumable": "1.0.0"}, timeout=30)
    served = requests.get(uploader.url, timeout=30)
    assert served.status_code == 200 and _sha(served.content) == _sha(data)
    assert served.headers["Content-Type"] == expected_type
    assert served.headers["Content-Disposition"] == expected_disposition
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "X-Injected" not in served.headers
    url = object_url.headers["X-Object-Url"]
    served = requests.get(url, timeout=30)
    assert served.status_code == 200 and _sha(served.content) == _sha(data)
    if url.startswith(hgw.url):  # the gateway's own origin (S3/Swift URLs are the store's)
        # an object stored without a type has the store's default (S3: binary/octet-stream)
        defaults = ("binary/octet-stream",) if expected_type == "application/octet-stream" else ()
        assert served.headers["Content-Type"] in (expected_type, *defaults)
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert (
            served.headers["Content-Disposition"].split(";")[0]
            == expected_disposition.split(";")[0]
        )
