"""tus 1.0.0 core protocol: every rule, with the status and headers it requires."""

from __future__ import annotations

import base64
import os

import requests

from tests.conftest import gateway_config
from tests.support.targets import Target
from tests.tus.helpers import OCTET, TUS, create, download, head, offset_of, patch, sha256
from testservers.gateway import GatewayProcess


def test_options_advertises_version_extensions_and_algorithms(gateway: GatewayProcess) -> None:
    r = requests.options(gateway.files_url, timeout=10)
    assert r.status_code == 204
    assert r.headers["Tus-Resumable"] == "1.0.0"
    assert r.headers["Tus-Version"] == "1.0.0"
    extensions = set(r.headers["Tus-Extension"].split(","))
    assert {"creation", "creation-with-upload", "termination", "expiration"} <= extensions
    algorithms = set(r.headers["Tus-Checksum-Algorithm"].split(","))
    assert {"sha1", "md5", "sha256", "crc32"} <= algorithms
    assert "Tus-Max-Size" not in r.headers  # unlimited here


def test_options_ignores_tus_resumable(gateway: GatewayProcess) -> None:
    r = requests.options(gateway.files_url, headers={"Tus-Resumable": "0.2.2"}, timeout=10)
    assert r.status_code == 204


def test_missing_or_wrong_version_is_412_with_tus_version(gateway: GatewayProcess) -> None:
    for headers in ({}, {"Tus-Resumable": "0.2.2"}):
        r = requests.post(gateway.files_url, headers={**headers, "Upload-Length": "5"}, timeout=10)
        assert r.status_code == 412
        assert r.headers["Tus-Version"] == "1.0.0"
    url = create(gateway.files_url, 5)
    r = requests.patch(url, data=b"hello", headers={**OCTET, "Upload-Offset": "0"}, timeout=10)
    assert r.status_code == 412
    assert offset_of(url) == 0  # nothing processed


def test_create_answers_201_with_location_and_expiry(gateway: GatewayProcess) -> None:
    r = requests.post(gateway.files_url, headers={**TUS, "Upload-Length": "10"}, timeout=10)
    assert r.status_code == 201
    assert r.headers["Location"].startswith(gateway.files_url)
    assert r.headers["Tus-Resumable"] == "1.0.0"
    assert r.headers["Upload-Expires"].endswith("GMT")
    upload_id = r.headers["Location"].rsplit("/", 1)[1]
    assert len(upload_id) >= 32  # 128 random bits, hex


def test_create_requires_exactly_one_length(gateway: GatewayProcess) -> None:
    cases = [
        {},
        {"Upload-Length": "5", "Upload-Defer-Length": "1"},
        {"Upload-Defer-Length": "2"},
        {"Upload-Length": "-1"},
        {"Upload-Length": "abc"},
    ]
    for headers in cases:
        r = requests.post(gateway.files_url, headers={**TUS, **headers}, timeout=10)
        assert r.status_code == 400, headers


def test_head_reports_offset_length_metadata_no_store(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, 11, {"filename": "hello.txt", "filetype": "text/plain"})
    r = head(url)
    assert r.status_code == 200
    assert r.headers["Upload-Offset"] == "0"
    assert r.headers["Upload-Length"] == "11"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Tus-Resumable"] == "1.0.0"
    pairs = dict(p.split(" ") for p in r.headers["Upload-Metadata"].split(","))
    assert base64.b64decode(pairs["filename"]) == b"hello.txt"
    assert base64.b64decode(pairs["filetype"]) == b"text/plain"


def test_empty_and_valueless_metadata_are_legal(gateway: GatewayProcess) -> None:
    r = requests.post(
        gateway.files_url,
        headers={**TUS, "Upload-Length": "1", "Upload-Metadata": ""},
        timeout=10,
    )
    assert r.status_code == 201
    r = requests.post(
        gateway.files_url,
        headers={**TUS, "Upload-Length": "1", "Upload-Metadata": "flag,name bmFtZQ=="},
        timeout=10,
    )
    assert r.status_code == 201
    assert head(r.headers["Location"]).headers["Upload-Metadata"] == "flag,name bmFtZQ=="


def test_malformed_metadata_is_400(gateway: GatewayProcess) -> None:
    for value in ("key not-base64!", "a YQ==,a YQ==", "a b c", ",YQ==", "a YQ==,,b"):
        r = requests.post(
            gateway.files_url,
            headers={**TUS, "Upload-Length": "1", "Upload-Metadata": value},
            timeout=10,
        )
        assert r.status_code == 400, value


def test_unknown_upload_is_404_without_offset(gateway: GatewayProcess) -> None:
    r = head(gateway.files_url + "0" * 32)
    assert r.status_code == 404
    assert "Upload-Offset" not in r.headers
    r = patch(gateway.files_url + "0" * 32, 0, b"x")
    assert r.status_code == 404


def test_patch_appends_and_reports_offset_and_expiry(gateway: GatewayProcess) -> None:
    data = os.urandom(300_000)
    url = create(gateway.files_url, len(data))
    r = patch(url, 0, data[:100_000])
    assert r.status_code == 204
    assert r.headers["Upload-Offset"] == "100000"
    assert r.headers["Upload-Expires"].endswith("GMT")
    r = patch(url, 100_000, data[100_000:])
    assert r.status_code == 204
    assert r.headers["Upload-Offset"] == str(len(data))
    assert sha256(download(url)) == sha256(data)


def test_patch_wrong_content_type_is_415(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, 5)
    r = requests.patch(
        url,
        data=b"hello",
        headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert r.status_code == 415
    assert offset_of(url) == 0


def test_offset_mismatch_is_409_and_changes_nothing(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, 10)
    assert patch(url, 0, b"12345").status_code == 204
    for wrong in (0, 3, 7):
        r = patch(url, wrong, b"abc")
        assert r.status_code == 409
    assert offset_of(url) == 5
    assert patch(url, 5, b"67890").status_code == 204
    assert download(url) == b"1234567890"


def test_patch_past_length_is_413_and_changes_nothing(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, 10)
    assert patch(url, 0, b"12345").status_code == 204
    r = patch(url, 5, b"this is far too long")
    assert r.status_code == 413
    assert offset_of(url) == 5
    assert patch(url, 5, b"67890").status_code == 204
    assert download(url) == b"1234567890"


def test_patch_past_length_without_content_length_is_413(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, 4)

    def body() -> object:
        yield b"ab"
        yield b"cdefgh"

    r = requests.patch(url, data=body(), headers={**TUS, **OCTET, "Upload-Offset": "0"}, timeout=10)
    assert r.status_code == 413
    assert offset_of(url) == 0


def test_zero_length_upload_completes_at_creation(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, 0)
    r = head(url)
    assert r.headers["Upload-Offset"] == "0"
    assert r.headers["Upload-Length"] == "0"
    assert "X-Object-Url" in r.headers
    assert download(url) == b""


def test_method_override_turns_post_into_patch(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, 5)
    r = requests.post(
        url,
        data=b"hello",
        headers={**TUS, **OCTET, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"},
        timeout=10,
    )
    assert r.status_code == 204
    assert r.headers["Upload-Offset"] == "5"
    r = requests.post(url, headers={**TUS, "X-HTTP-Method-Override": "DELETE"}, timeout=10)
    assert r.status_code == 204


def test_finished_upload_carries_the_object_url(gateway: GatewayProcess) -> None:
    data = b"object url test"
    url = create(gateway.files_url, len(data))
    r = patch(url, 0, data)
    assert r.status_code == 204
    object_url = r.headers["X-Object-Url"]
    assert head(url).headers["X-Object-Url"] == object_url
    got = requests.get(object_url, timeout=10)
    assert got.status_code == 200 and got.content == data
    unfinished = create(gateway.files_url, 10)
    assert "X-Object-Url" not in head(unfinished).headers


def test_get_download_headers_and_range(gateway: GatewayProcess) -> None:
    data = os.urandom(10_000)
    url = create(
        gateway.files_url, len(data), {"filename": "report 1.pdf", "filetype": "application/pdf"}
    )
    assert patch(url, 0, data).status_code == 204
    r = requests.get(url, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(len(data))
    assert r.headers["Content-Type"] == "application/pdf"
    assert 'filename="report 1.pdf"' in r.headers["Content-Disposition"]
    assert r.content == data
    r = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=10)
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert r.content == data[100:200]
    r = requests.get(url, headers={"Range": "bytes=-10"}, timeout=10)
    assert r.status_code == 206 and r.content == data[-10:]
    r = requests.get(url, headers={"Range": "bytes=20000-"}, timeout=10)
    assert r.status_code == 416


def test_get_unfinished_upload_is_refused(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, 10)
    patch(url, 0, b"12345")
    r = requests.get(url, timeout=10)
    assert r.status_code == 409


def test_unsafe_filetype_is_not_reflected(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, 1, {"filetype": "text/html\r\nX-Evil: 1"})
    assert patch(url, 0, b"x").status_code == 204
    r = requests.get(url, timeout=10)
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert "X-Evil" not in r.headers


def test_delete_is_exactly_204_then_gone(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, 10)
    patch(url, 0, b"12345")
    r = requests.delete(url, headers=TUS, timeout=10)
    assert r.status_code == 204
    assert r.content == b""
    assert head(url).status_code in (404, 410)
    assert patch(url, 5, b"67890").status_code in (404, 410)
    assert requests.delete(url, headers=TUS, timeout=10).status_code in (404, 410)


def test_delete_finished_upload_removes_the_object(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, 3)
    object_url = patch(url, 0, b"abc").headers["X-Object-Url"]
    assert requests.delete(url, headers=TUS, timeout=10).status_code == 204
    assert requests.get(object_url, timeout=10).status_code == 404


def test_creation_with_upload(gateway: GatewayProcess) -> None:
    data = os.urandom(50_000)
    r = requests.post(
        gateway.files_url,
        data=data[:20_000],
        headers={**TUS, **OCTET, "Upload-Length": str(len(data))},
        timeout=10,
    )
    assert r.status_code == 201
    assert r.headers["Upload-Offset"] == "20000"
    url = r.headers["Location"]
    assert patch(url, 20_000, data[20_000:]).status_code == 204
    assert download(url) == data


def test_creation_with_whole_upload_finishes(gateway: GatewayProcess) -> None:
    r = requests.post(
        gateway.files_url,
        data=b"all at once",
        headers={**TUS, **OCTET, "Upload-Length": "11", "Expect": "100-continue"},
        timeout=10,
    )
    assert r.status_code == 201
    assert r.headers["Upload-Offset"] == "11"
    assert "X-Object-Url" in r.headers
    assert download(r.headers["Location"]) == b"all at once"


def test_creation_with_wrong_body_type_is_415(gateway: GatewayProcess) -> None:
    r = requests.post(
        gateway.files_url,
        data=b"abc",
        headers={**TUS, "Upload-Length": "3", "Content-Type": "text/plain"},
        timeout=10,
    )
    assert r.status_code == 415


def test_deferred_length(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, None)
    r = head(url)
    assert r.headers["Upload-Defer-Length"] == "1"
    assert "Upload-Length" not in r.headers
    assert r.headers["Upload-Offset"] == "0"
    assert patch(url, 0, b"hello ").status_code == 204
    r = patch(url, 6, b"world", **{"Upload-Length": "11"})
    assert r.status_code == 204
    h = head(url)
    assert h.headers["Upload-Length"] == "11"
    assert "Upload-Defer-Length" not in h.headers
    assert download(url) == b"hello world"


def test_deferred_length_cannot_change(gateway: GatewayProcess) -> None:
    url = create(gateway.files_url, None)
    assert patch(url, 0, b"abc", **{"Upload-Length": "10"}).status_code == 204
    r = patch(url, 3, b"def", **{"Upload-Length": "12"})
    assert r.status_code == 400
    assert offset_of(url) == 3


def _post_forwarded(files_url: str) -> tuple[str, str]:
    r = requests.post(
        files_url,
        headers={
            **TUS,
            "Upload-Length": "1",
            "X-Forwarded-Host": "uploads.example.com",
            "X-Forwarded-Proto": "https",
        },
        timeout=10,
    )
    r2 = requests.post(
        files_url,
        headers={
            **TUS,
            "Upload-Length": "1",
            "Forwarded": 'for=1.2.3.4;host="cdn.example.org";proto=https',
        },
        timeout=10,
    )
    return r.headers["Location"], r2.headers["Location"]


def test_location_uses_forwarded_headers_when_trusted(target: Target) -> None:
    config = gateway_config(target, server={"trust_forwarded": True})
    with GatewayProcess(config) as gw:
        by_x_forwarded, by_forwarded = _post_forwarded(gw.files_url)
    assert by_x_forwarded.startswith("https://uploads.example.com/files/")
    assert by_forwarded.startswith("https://cdn.example.org/files/")


def test_forwarded_headers_ignored_by_default(gateway: GatewayProcess) -> None:
    """trust_forwarded defaults to false: a client cannot choose the host of
    Location (X-Forwarded-Host: evil.example)."""
    for location in _post_forwarded(gateway.files_url):
        assert location.startswith(gateway.files_url), location


def test_cors_preflight_and_exposed_headers(gateway: GatewayProcess) -> None:
    r = requests.options(
        gateway.files_url,
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "tus-resumable,upload-offset,content-type",
        },
        timeout=10,
    )
    assert r.status_code in (200, 204)
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "PATCH" in r.headers["Access-Control-Allow-Methods"]
    allowed = r.headers["Access-Control-Allow-Headers"].lower()
    for name in (
        "tus-resumable",
        "upload-offset",
        "upload-length",
        "upload-metadata",
        "upload-concat",
    ):
        assert name in allowed
    r = requests.post(
        gateway.files_url,
        headers={**TUS, "Upload-Length": "1", "Origin": "https://app.example.com"},
        timeout=10,
    )
    exposed = r.headers["Access-Control-Expose-Headers"].lower()
    for name in (
        "location",
        "upload-offset",
        "upload-length",
        "tus-resumable",
        "upload-expires",
        "x-object-url",
    ):
        assert name in exposed
