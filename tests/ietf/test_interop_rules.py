"""Every request/response rule of each interop version, over raw HTTP (the
only way to see the 104 interim responses), on a local-disk gateway."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.ietf.conftest import MAX_SIZE
from tests.ietf.helpers import (
    PARTIAL,
    PROBLEM_TYPES,
    VERSIONS,
    append,
    complete_field,
    create,
    fields,
    offset_of,
    says_complete,
)
from tests.ietf.raw import request
from tests.tus.test_tus_js_client import JS_DIR
from testservers.gateway import GatewayProcess

ALL = [*VERSIONS, None]  # None: no interop header, the newest rules without 104
EARLY = [3, 4, 5]  # drafts -01 … -03: no Upload-Limit, no problem types, 201 appends
STRICT = [3, 4, 5, 6]  # drafts -01 … -05: HEAD/DELETE refuse Upload-Offset / completeness


def _problem(body: bytes) -> dict[str, object]:
    doc = json.loads(body)
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize("v", ALL)
def test_creation_without_content_gives_url_in_104_and_201(
    rules_gateway: GatewayProcess, v: int | None
) -> None:
    ex = create(rules_gateway.files_url, v, complete=False, Upload_Length="10")
    assert ex.status == 201
    location = ex.headers["location"]
    assert location.startswith(rules_gateway.files_url)
    assert not says_complete(v, ex.headers)
    assert ex.headers["upload-offset"] == "0"
    if v is None:
        assert ex.interim == []  # the drafts forbid a 104 without an interop version
    else:
        assert [m.status for m in ex.interim] == [104]
        interim = ex.interim[0].headers
        assert interim["upload-draft-interop-version"] == str(v)
        assert interim["location"] == location  # identical in interim and final
    if v in EARLY:
        assert "upload-limit" not in ex.headers
    else:
        limit = dict(m.split("=") for m in ex.headers["upload-limit"].split(", "))
        assert limit["max-size"] == str(MAX_SIZE)
        lifetime = "expires" if v == 6 else "max-age"
        assert 0 < int(limit[lifetime]) <= 86400
        if v is not None:
            assert ex.interim[0].headers["upload-limit"] == ex.headers["upload-limit"]


@pytest.mark.parametrize("v", ALL)
def test_creation_with_whole_content_completes_the_upload(
    rules_gateway: GatewayProcess, v: int | None
) -> None:
    data = os.urandom(100_000)
    ex = create(
        rules_gateway.files_url,
        v,
        data,
        complete=True,
        Content_Type="image/png",
        Content_Disposition='inline; filename="photo 1.png"',
    )
    assert ex.status == 201
    assert says_complete(v, ex.headers)
    assert ex.headers["upload-offset"] == str(len(data))
    assert "x-object-url" in ex.headers
    got = requests.get(ex.headers["location"], timeout=30)
    assert got.content == data
    assert got.headers["Content-Type"] == "image/png"  # the representation's own type
    assert "photo 1.png" in got.headers["Content-Disposition"]
    head = request("HEAD", ex.headers["location"], fields(v))
    assert head.status == 204
    assert says_complete(v, head.headers)
    assert head.headers["upload-length"] == str(len(data))


@pytest.mark.parametrize("v", ALL)
def test_chunked_complete_creation_takes_its_length_from_the_end(
    rules_gateway: GatewayProcess, v: int | None
) -> None:
    data = os.urandom(70_000)
    ex = request("POST", rules_gateway.files_url, fields(v, True), data, chunked=True)
    assert ex.status == 201, ex.final
    assert says_complete(v, ex.headers)
    head = request("HEAD", ex.headers["location"], fields(v))
    assert head.headers["upload-length"] == str(len(data))
    assert requests.get(ex.headers["location"], timeout=30).content == data


@pytest.mark.parametrize("v", ALL)
def test_empty_complete_creation_is_an_empty_object(
    rules_gateway: GatewayProcess, v: int | None
) -> None:
    ex = create(rules_gateway.files_url, v, b"", complete=True)
    assert ex.status == 201
    assert says_complete(v, ex.headers)
    assert requests.get(ex.headers["location"], timeout=30).content == b""


@pytest.mark.parametrize("v", ALL)
def test_creation_needs_the_completeness_field(
    rules_gateway: GatewayProcess, v: int | None
) -> None:
    headers = fields(v, None, Upload_Length="5")
    headers["Upload-Draft-Interop-Version"] = str(v or 8)  # IETF by its version alone
    ex = request("POST", rules_gateway.files_url, headers, b"")
    assert ex.status == 400
    assert ex.headers["content-type"].startswith("application/problem+json")
    assert complete_field(v or 8) in str(_problem(ex.final.body if ex.final else b"")["title"])
    assert ex.interim == []


@pytest.mark.parametrize("v", ALL)
def test_malformed_fields_are_400_with_a_reason(
    rules_gateway: GatewayProcess, v: int | None
) -> None:
    url = rules_gateway.files_url
    cases = [
        {complete_field(v): "yes"},
        {complete_field(v): "?0", "Upload-Length": "-1"},
        {complete_field(v): "?0", "Upload-Length": "1" * 16},
        {complete_field(v): "?0", "Upload-Length": "12abc"},
        {complete_field(v): "?0", "Upload-Offset": "0"},  # creation must not carry it
    ]
    for case in cases:
        h = fields(v)
        h.update(case)
        ex = request("POST", url, h, b"")
        assert ex.status == 400, (case, ex.status)
        doc = _problem(ex.final.body if ex.final else b"")
        assert doc["status"] == 400 and doc["title"]
        assert not says_complete(v, ex.headers)


@pytest.mark.parametrize("v", ALL)
def test_inconsistent_length_is_400(rules_gateway: GatewayProcess, v: int | None) -> None:
    ex = create(rules_gateway.files_url, v, b"12345", complete=True, Upload_Length="9")
    assert ex.status == 400
    doc = _problem(ex.final.body if ex.final else b"")
    if v in (3, 4, 5, 6):  # the problem type exists from draft -06 (interop 7)
        assert doc["type"] == "about:blank"
    else:
        assert doc["type"] == PROBLEM_TYPES + "inconsistent-upload-length"
    assert not says_complete(v, ex.headers)


@pytest.mark.parametrize("v", ALL)
def test_too_large_is_413_with_the_limit(rules_gateway: GatewayProcess, v: int | None) -> None:
    ex = create(rules_gateway.files_url, v, complete=False, Upload_Length=str(MAX_SIZE + 1))
    assert ex.status == 413
    assert ex.interim == []  # nothing was created
    if v in EARLY:
        assert "upload-limit" not in ex.headers
    else:
        assert f"max-size={MAX_SIZE}" in ex.headers["upload-limit"]


@pytest.mark.parametrize("v", ALL)
def test_offset_retrieval(rules_gateway: GatewayProcess, v: int | None) -> None:
    ex = create(rules_gateway.files_url, v, b"abc", complete=False, Upload_Length="10")
    url = ex.headers["location"]
    # GET without a field of the protocol is a tus download
    for method in ("HEAD", "GET") if v is not None else ("HEAD",):
        r = request(method, url, fields(v))
        assert r.status == 204, (method, r.status)
        assert r.headers["upload-offset"] == "3"
        assert r.headers["upload-length"] == "10"
        assert not says_complete(v, r.headers)
        assert r.headers["cache-control"] == "no-store"
        assert r.final is not None and r.final.body == b""
        assert ("upload-limit" in r.headers) == (v not in EARLY)
    r = request("HEAD", url, fields(v, Upload_Offset="3"))
    assert r.status == (400 if v in STRICT else 204)


@pytest.mark.parametrize("v", ALL)
def test_append_then_complete(rules_gateway: GatewayProcess, v: int | None) -> None:
    data = os.urandom(300_000)
    url = create(rules_gateway.files_url, v, complete=False).headers["location"]
    r = append(url, v, 0, data[:100_000], complete=False)
    assert r.status == (201 if v in STRICT else 204)
    assert r.headers["upload-offset"] == "100000"
    assert not says_complete(v, r.headers)
    assert r.interim == []  # no 104 on appends (the offset is known only once stored)
    r = append(url, v, 100_000, data[100_000:], complete=True)
    assert r.status == (201 if v in STRICT else 200)
    assert says_complete(v, r.headers)
    assert r.headers["upload-offset"] == r.headers["upload-length"] == str(len(data))
    assert "x-object-url" in r.headers
    assert requests.get(url, timeout=30).content == data


@pytest.mark.parametrize("v", ALL)
def test_append_of_unknown_length_completes_where_content_ends(
    rules_gateway: GatewayProcess, v: int | None
) -> None:
    url = create(rules_gateway.files_url, v, b"head-", complete=False).headers["location"]
    h = fields(v, True, Upload_Offset="5")
    if v is None or v >= 6:
        h["Content-Type"] = PARTIAL
    r = request("PATCH", url, h, b"tail", chunked=True)
    assert r.status in (200, 201)
    assert says_complete(v, r.headers)
    assert requests.get(url, timeout=30).content == b"head-tail"


@pytest.mark.parametrize("v", ALL)
def test_append_media_type(rules_gateway: GatewayProcess, v: int | None) -> None:
    url = create(rules_gateway.files_url, v, complete=False).headers["location"]
    r = append(url, v, 0, b"abc", complete=False, Content_Type="application/octet-stream")
    if v in EARLY:
        assert r.status == 201  # application/partial-upload is required from draft -04 on
    else:
        assert r.status == 415
        assert offset_of(url, v) == 0


@pytest.mark.parametrize("v", ALL)
def test_append_needs_offset_and_completeness(rules_gateway: GatewayProcess, v: int | None) -> None:
    url = create(rules_gateway.files_url, v, complete=False, Upload_Length="6").headers["location"]
    for offset in (None, "abc", "-1", "1" * 16):
        h = fields(v, False)
        if offset is not None:
            h["Upload-Offset"] = offset
        h["Content-Type"] = PARTIAL
        assert request("PATCH", url, h, b"abc").status == 400, offset
    h = fields(v, None, Upload_Offset="0", Content_Type=PARTIAL)
    r = request("PATCH", url, h, b"abcdef")
    if v == 3:  # draft -01: no Upload-Incomplete means the content ends the upload
        assert r.status == 201
        assert says_complete(v, r.headers)
    elif v is None:  # nothing marks it as this protocol's: tus refuses it
        assert r.status == 412
    else:
        assert r.status == 400
        assert offset_of(url, v) == 0


@pytest.mark.parametrize("v", ALL)
def test_offset_mismatch_is_409_with_the_offset(
    rules_gateway: GatewayProcess, v: int | None
) -> None:
    url = create(rules_gateway.files_url, v, b"abc", complete=False).headers["location"]
    r = append(url, v, 7, b"xyz", complete=False)
    assert r.status == 409
    assert r.headers["upload-offset"] == "3"
    assert not says_complete(v, r.headers)
    doc = _problem(r.final.body if r.final else b"")
    assert doc["expected-offset"] == 3 and doc["provided-offset"] == 7
    if v in EARLY:
        assert doc["type"] == "about:blank"
    else:
        assert doc["type"] == PROBLEM_TYPES + "mismatching-upload-offset"
    assert offset_of(url, v) == 3


@pytest.mark.parametrize("v", ALL)
def test_completed_upload_rules(rules_gateway: GatewayProcess, v: int | None) -> None:
    url = create(rules_gateway.files_url, v, b"done", complete=True).headers["location"]
    # more content for a complete upload: refused, nothing changes
    r = append(url, v, 4, b"more", complete=False)
    assert r.status == 400
    doc = _problem(r.final.body if r.final else b"")
    if v in EARLY:
        assert doc["type"] == "about:blank"
    else:
        assert doc["type"] == PROBLEM_TYPES + "completed-upload"
    # a client that lost the final response and retries an earlier append: 409 + offset
    r = append(url, v, 0, b"done", complete=True)
    assert r.status == 409
    assert r.headers["upload-offset"] == "4"
    # ... or that completes it again without content: the completion is answered again
    r = append(url, v, 4, b"", complete=True)
    assert r.status in (200, 201)
    assert says_complete(v, r.headers)
    assert requests.get(url, timeout=30).content == b"done"


@pytest.mark.parametrize("v", ALL)
def test_append_with_content_digest(rules_gateway: GatewayProcess, v: int | None) -> None:
    url = create(rules_gateway.files_url, v, complete=False).headers["location"]
    good = base64.b64encode(hashlib.sha256(b"abc").digest()).decode()
    bad = base64.b64encode(hashlib.sha256(b"abd").digest()).decode()
    r = append(url, v, 0, b"abc", complete=False, Content_Digest=f"sha-256=:{bad}:")
    assert r.status == 400
    assert offset_of(url, v) == 0  # the mismatching content was not appended
    r = append(url, v, 0, b"abc", complete=False, Content_Digest=f"sha-256=:{good}:")
    assert r.status in (201, 204)
    r = append(url, v, 3, b"x", complete=False, Content_Digest="md5=:AAAA:")
    assert r.status == 400  # an algorithm the gateway cannot check is refused, not ignored


@pytest.mark.parametrize("v", ALL)
def test_cancellation(rules_gateway: GatewayProcess, v: int | None) -> None:
    url = create(rules_gateway.files_url, v, b"abc", complete=False).headers["location"]
    if v in STRICT:
        assert request("DELETE", url, fields(v, Upload_Offset="3")).status == 400
    r = request("DELETE", url, fields(v))
    assert r.status == 204
    gone = request("HEAD", url, fields(v))
    assert gone.status == (404 if v in STRICT else 410)
    assert append(url, v, 3, b"x", complete=False).status == (404 if v in STRICT else 410)
    unknown = rules_gateway.files_url + "0" * 32
    assert request("HEAD", unknown, fields(v)).status == 404


@pytest.mark.parametrize("value", ["2", "11", "abc", "0005x"])
def test_unsupported_interop_version_is_400_without_104(
    rules_gateway: GatewayProcess, value: str
) -> None:
    h = {"Upload-Draft-Interop-Version": value, "Upload-Complete": "?0"}
    ex = request("POST", rules_gateway.files_url, h, b"")
    assert ex.status == 400
    assert ex.interim == []
    assert "3, 4, 5, 6, 7, 8, 9, 10" in str(_problem(ex.final.body if ex.final else b"")["title"])


def test_no_104_to_an_http_1_0_client(rules_gateway: GatewayProcess) -> None:
    ex = request("POST", rules_gateway.files_url, fields(8, False), b"", http10=True)
    assert ex.status == 201
    assert ex.interim == []


@pytest.mark.parametrize("v", [6, 8, 9, 10, None])
def test_options_announces_limits(rules_gateway: GatewayProcess, v: int | None) -> None:
    r = request("OPTIONS", rules_gateway.files_url, fields(v))
    assert r.status == 204
    assert r.headers["upload-limit"] == f"max-size={MAX_SIZE}"
    if v is not None:  # drafts -09, -10 want Accept-Patch; plain OPTIONS is tus's
        assert r.headers["accept-patch"] == PARTIAL


def test_cors_exposes_the_fields(rules_gateway: GatewayProcess) -> None:
    r = requests.options(
        rules_gateway.files_url,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Upload-Draft-Interop-Version": "6",
        },
        timeout=10,
    )
    exposed = r.headers["Access-Control-Expose-Headers"]
    for name in ("Upload-Complete", "Upload-Limit", "Upload-Offset", "Location"):
        assert name in exposed
    assert "Upload-Draft-Interop-Version" in r.headers["Access-Control-Allow-Headers"]
    assert "Tus-Resumable" not in r.headers  # an IETF response


@pytest.mark.parametrize("v", [6, 9, 10])
def test_repr_digest_of_a_single_request_upload_is_checked(
    rules_gateway: GatewayProcess, v: int
) -> None:
    data = b"the whole representation"
    good = base64.b64encode(hashlib.sha512(data).digest()).decode()
    ex = create(rules_gateway.files_url, v, data, complete=True, Repr_Digest=f"sha-512=:{good}:")
    assert ex.status == 201
    assert says_complete(v, ex.headers)
    other = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    wrong = base64.b64encode(hashlib.sha512(b"other").digest()).decode()
    for digest in (f"sha-256=:{other}:", f"sha-512=:{wrong}:"):
        ex = create(rules_gateway.files_url, v, data, complete=True, Repr_Digest=digest)
        assert ex.status == 400  # RFC 9530 names no status; the drafts' mismatches are 400
        assert "Repr-Digest mismatch" in json.loads(ex.final.body)["title"]
        url = ex.interim[0].headers["location"]  # judged once the content has passed
        assert request("HEAD", url, fields(v)).status == 400  # refused for good: nothing kept
    # a digest of the wrong length for its algorithm is malformed: refused
    # before an upload exists (no 104)
    ex = create(rules_gateway.files_url, v, data, complete=True, Repr_Digest=f"sha-256=:{good}:")
    assert ex.status == 400 and ex.interim == []


@pytest.mark.parametrize("v", [4, 5, 6, 7, 8, 9, 10])
def test_node_http_client_parses_the_104(
    rules_gateway: GatewayProcess, tmp_path: Path, v: int
) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(300_000))
    node = shutil.which("node")
    assert node, "node is required (the test command installs it)"
    proc = subprocess.run(
        [node, str(JS_DIR / "ietf_104.mjs"), rules_gateway.files_url, str(source), str(v)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=JS_DIR,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert [i["status"] for i in seen["interim"]] == [104]
    assert seen["interim"][0]["headers"]["upload-draft-interop-version"] == str(v)
    assert seen["interim"][0]["headers"]["location"] == seen["headers"]["location"]
    assert seen["status"] == 201
    got = requests.get(seen["headers"]["location"], timeout=60).content
    assert got == source.read_bytes()


@pytest.mark.parametrize("v", [5, 8])
def test_content_coding_is_kept_and_counted_coded(rules_gateway: GatewayProcess, v: int) -> None:
    coded = gzip.compress(os.urandom(50_000) + b"x" * 50_000)
    half = len(coded) // 2  # a gzip stream cut mid-way: not decodable on its own
    ex = create(rules_gateway.files_url, v, coded[:half], complete=False, Content_Encoding="gzip")
    assert ex.status == 201
    assert ex.headers["upload-offset"] == str(half)  # offsets count the coded bytes
    url = ex.headers["location"]
    r = append(url, v, half, coded[half:], complete=True)
    assert r.status in (200, 201)
    got = requests.get(url, timeout=30, headers={"Accept-Encoding": "identity"})
    assert got.content == coded  # the representation as sent, coding included


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_creation_by_any_method_with_content(rules_gateway: GatewayProcess, method: str) -> None:
    ex = request(method, rules_gateway.files_url, fields(8, True), b"x")
    assert ex.status == 201
    assert [m.status for m in ex.interim] == [104]
    assert requests.get(ex.headers["location"], timeout=30).content == b"x"
    assert request("DELETE", rules_gateway.files_url, fields(8)).status == 405


@pytest.mark.parametrize("v", [5, 7])
def test_offset_mismatch_is_reported_before_the_length(
    rules_gateway: GatewayProcess, v: int
) -> None:
    ex = create(rules_gateway.files_url, v, b"abc", complete=False, Upload_Length="10")
    url = ex.headers["location"]
    # a retry of the first request: wrong offset, and a length that no longer adds up
    r = append(url, v, 0, b"abcdefg", complete=True)
    assert r.status == 409
    assert r.headers["upload-offset"] == "3"


@pytest.mark.parametrize("v", ALL)
def test_an_empty_append_completes_an_upload_of_unknown_length(
    rules_gateway: GatewayProcess, v: int | None
) -> None:
    url = create(rules_gateway.files_url, v, b"abc", complete=False).headers["location"]
    assert "upload-length" not in request("HEAD", url, fields(v)).headers
    r = append(url, v, 3, b"", complete=True)
    assert r.status in (200, 201)
    assert says_complete(v, r.headers)
    assert r.headers["upload-length"] == "3"
    assert requests.get(url, timeout=30).content == b"abc"
