"""Class 1 of issue 15: every number a client sends goes through one bounded
ASCII-digit parser (``gateway/numbers.py``) — tus headers, Qiniu path
segments, Range bounds — and a bad one is a 4xx with a reason, never a 5xx."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
import requests

from gateway.core.errors import BadRequest
from gateway.numbers import MAX_VALUE, json_number, parse_count, saturating
from tests.qiniu.harness import AK, SK, token
from tests.tus.helpers import TUS, create, patch
from testservers.gateway import GatewayProcess

HUGE = "9" * 5000
BAD_NUMBERS = [HUGE, "²", "١٠", "+5", "-1", "5_000", "0x10", " ", "1e3", "9" * 20]


@pytest.mark.parametrize("text", BAD_NUMBERS)
def test_parse_count_refuses(text: str) -> None:
    with pytest.raises(BadRequest, match="Upload-Length"):
        parse_count(text, "Upload-Length")


def test_parse_count_accepts_ascii_digits_in_bounds() -> None:
    assert parse_count("0", "n") == 0
    assert parse_count("000123", "n") == 123
    assert parse_count(str(MAX_VALUE), "n") == MAX_VALUE
    with pytest.raises(BadRequest, match="between 1 and 10"):
        parse_count("11", "n", 1, 10)


def test_saturating_never_converts_a_long_string() -> None:
    assert saturating(HUGE) == MAX_VALUE + 1
    assert saturating("0" * 5000 + "7") == 7


@pytest.mark.parametrize(
    "value", [float("inf"), 1e400, "1e400", 10**400, True, [1], {"a": 1}, "١٠", 1.5, "²"]
)
def test_json_number_refuses(value: object) -> None:
    with pytest.raises(BadRequest, match="deadline"):
        json_number(value, "deadline")


def test_json_number_accepts() -> None:
    assert json_number(None, "n") is None
    assert json_number("", "n") is None
    assert json_number(12, "n") == 12
    assert json_number(12.0, "n") == 12
    assert json_number(" 12 ", "n") == 12
    assert json_number("-3", "n") == -3
    with pytest.raises(BadRequest):
        json_number(-3, "n", minimum=0)


@pytest.mark.parametrize("header", ["Upload-Length", "Upload-Offset"])
@pytest.mark.parametrize("value", [HUGE, "²", "١٠", "9" * 20])
def test_tus_number_headers(pgw: GatewayProcess, header: str, value: str) -> None:
    raw = value.encode()  # UTF-8 on the wire, as a hostile client sends it
    if header == "Upload-Length":
        r = requests.post(pgw.files_url, headers={**TUS, header: raw}, timeout=30)
    else:
        url = create(pgw.files_url, 10)
        r = requests.patch(
            url,
            data=b"x",
            headers={**TUS, header: raw, "Content-Type": "application/offset+octet-stream"},
            timeout=30,
        )
    assert r.status_code == 400, (r.status_code, r.text)
    assert header in r.text and "\n" not in r.text.rstrip("\n")


@pytest.mark.parametrize(
    ("value", "status", "body"),
    [
        (f"bytes={HUGE}-", 416, None),
        (f"bytes=0-{HUGE}", 206, b"0123456789"),
        (f"bytes=-{HUGE}", 206, b"0123456789"),
        (f"bytes=2-{HUGE}", 206, b"23456789"),
        ("bytes=١-٢", 200, b"0123456789"),  # not a byte range: the whole object
    ],
)
def test_range_bounds_of_any_length(
    pgw: GatewayProcess, value: str, status: int, body: bytes | None
) -> None:
    url = create(pgw.files_url, 10)
    r = patch(url, 0, b"0123456789")
    assert r.status_code == 204
    object_url = r.headers["X-Object-Url"]
    # A store's own URL (a Swift temp URL, an S3 presigned one) applies the store's Range rules.
    served_here = object_url.startswith(pgw.url)
    for target in (url, object_url) if served_here else (url,):
        got = requests.get(target, headers={"Range": value.encode()}, timeout=30)
        assert got.status_code == status, (target, got.status_code, got.text)
        if body is not None:
            assert got.content == body
        else:
            assert got.headers["Content-Range"] == "bytes */10"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize("value", [HUGE, "١٠", "²", "+4", "9" * 20])
def test_qiniu_path_numbers(pgw: GatewayProcess, value: str) -> None:
    auth = {"Authorization": f"UpToken {token()}"}
    uploads = f"{pgw.url}/buckets/photos/objects/{_b64('k')}/uploads"
    upload_id = requests.post(uploads, headers=auth, timeout=30).json()["uploadId"]
    block = requests.post(f"{pgw.url}/mkblk/8", data=b"abc", headers=auth, timeout=30)
    assert block.status_code == 200, block.text
    paths = [
        f"/mkblk/{value}",
        f"/bput/{block.json()['ctx']}/{value}",
        f"/mkfile/{value}",
        f"/buckets/photos/objects/{_b64('k')}/uploads/{upload_id}/{value}",
        f"/buckets/photos/objects/{_b64('k')}/uploads/{upload_id}?max-parts={value}",
        f"/buckets/photos/objects/{_b64('k')}/uploads/{upload_id}?part-number-marker={value}",
    ]
    for path in paths:
        method = "GET" if "?" in path else "PUT" if "/uploads/" in path else "POST"
        r = requests.request(method, pgw.url + path, data=b"abc", headers=auth, timeout=30)
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert r.json()["error"]
    form = {"token": token(), "key": "crc-number", "crc32": value}
    r = requests.post(pgw.url + "/", data=form, files={"file": ("a", b"abc")}, timeout=30)
    assert r.status_code == 400, ("form crc32", r.status_code, r.text)
    assert "crc32" in r.json()["error"]


def raw_token(policy_json: str) -> str:
    """An upload token signed with the test keys over exactly ``policy_json``
    (SDKs would refuse to encode ``1e400`` or a 400-digit integer)."""
    encoded = base64.urlsafe_b64encode(policy_json.encode()).decode()
    signature = hmac.new(SK.encode(), encoded.encode(), hashlib.sha1).digest()
    return f"{AK}:{base64.urlsafe_b64encode(signature).decode()}:{encoded}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("deadline", "1e400"),
        ("deadline", '"1e400"'),
        ("fsizeLimit", '"1e400"'),
        ("fsizeLimit", "1e400"),
        ("deleteAfterDays", "1" + "0" * 400),
        ("deleteAfterDays", "36501"),
        ("fsizeMin", '"١٠"'),
        ("insertOnly", "1e400"),
    ],
)
def test_signed_policy_numbers(pgw: GatewayProcess, field: str, value: str) -> None:
    deadline = int(time.time()) + 3600
    extra = "" if field == "deadline" else f',"deadline":{deadline}'
    policy = f'{{"scope":"photos","{field}":{value}{extra}}}'
    r = requests.post(
        pgw.url + "/",
        files={"file": ("a.txt", b"abc")},
        data={"token": raw_token(policy), "key": "policy-number"},
        timeout=30,
    )
    assert r.status_code == 400, (r.status_code, r.text)
    assert field in r.json()["error"]
    good = f'{{"scope":"photos","deadline":{deadline},"deleteAfterDays":"36500"}}'
    r = requests.post(
        pgw.url + "/",
        files={"file": ("a.txt", b"abc")},
        data={"token": raw_token(good), "key": "policy-number"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
