"""Class 2 of issue 15: a chunked body aiohttp cannot decode (a 100 KB
chunk-size line, bad hex, a missing CRLF) is a 400 with a one-line reason on
every route that reads a body, never a 5xx or an unhandled exception; a tus
PATCH keeps the bytes that arrived whole before the bad chunk."""

from __future__ import annotations

import base64

import pytest
import requests

from tests.hostile.rawhttp import exchange, path_of
from tests.qiniu.harness import token
from tests.tus.helpers import create, offset_of
from testservers.gateway import GatewayProcess

BAD_CHUNKS = {
    "huge-size-line": b"1" * 100_000 + b"\r\n",
    "bad-hex": b"zz\r\nabc\r\n0\r\n\r\n",
    "negative": b"-5\r\nabcde\r\n0\r\n\r\n",
    "no-crlf-after-data": b"3\r\nabcXX0\r\n\r\n",
    "good-then-huge": b"4\r\nabcd\r\n" + b"f" * 100_000 + b"\r\n",
}


def _chunked(method: str, path: str, *headers: str) -> str:
    return "\r\n".join(
        [f"{method} {path} HTTP/1.1", "Host: gw", "Transfer-Encoding: chunked", *headers]
    )


@pytest.mark.parametrize("name", list(BAD_CHUNKS))
def test_tus_patch_with_a_malformed_chunked_body(pgw: GatewayProcess, name: str) -> None:
    url = create(pgw.files_url, 100)
    head = _chunked(
        "PATCH",
        path_of(url),
        "Tus-Resumable: 1.0.0",
        "Upload-Offset: 0",
        "Content-Type: application/offset+octet-stream",
    )
    status, answer = exchange(url, head, BAD_CHUNKS[name])
    assert status == 400, answer[:300]
    reason = answer.partition(b"\r\n\r\n")[2]
    assert reason.count(b"\n") <= 1 and len(reason) < 400, reason
    assert offset_of(url) in (0, 4)  # the whole chunk before the bad one may be kept
    assert "Traceback" not in pgw.log()


@pytest.mark.parametrize("name", list(BAD_CHUNKS))
def test_qiniu_bodies_with_a_malformed_chunked_body(pgw: GatewayProcess, name: str) -> None:
    upload_token = token()
    auth = f"Authorization: UpToken {upload_token}"
    uploads = f"/buckets/photos/objects/{base64.urlsafe_b64encode(b'chunked').decode()}/uploads"
    r = requests.post(pgw.url + uploads, headers={"Authorization": f"UpToken {upload_token}"})
    upload_id = r.json()["uploadId"]
    paths = [
        ("POST", "/mkblk/4"),
        ("POST", "/mkfile/4"),
        ("PUT", f"{uploads}/{upload_id}/1"),
        ("POST", f"{uploads}/{upload_id}"),
    ]
    for method, path in paths:
        status, answer = exchange(pgw.url, _chunked(method, path, auth), BAD_CHUNKS[name])
        assert status == 400, (path, answer[:300])
        # the gateway's {"error"} or aiohttp's own one-line 400 (bad hex, a missing CRLF)
        assert len(answer.partition(b"\r\n\r\n")[2]) < 400
    form = _chunked("POST", "/", "Content-Type: multipart/form-data; boundary=xx")
    status, answer = exchange(pgw.url, form, BAD_CHUNKS[name])
    assert status == 400, answer[:300]
    assert "Traceback" not in pgw.log()


def test_empty_bodies_never_hang_the_gateway(pgw: GatewayProcess) -> None:
    """A request without a body shares aiohttp's EMPTY_PAYLOAD; reading it
    with iter_chunks() a second time in the process spun the event loop
    forever (found by the fuzz suite). Every body route, several times."""
    auth = {"Authorization": f"UpToken {token()}"}
    url = create(pgw.files_url, 10)
    for _ in range(3):
        r = requests.post(f"{pgw.url}/mkblk/8", data=b"", headers=auth, timeout=10)
        assert r.status_code in (200, 400), r.text
        r = requests.patch(
            url,
            data=b"",
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
            timeout=10,
        )
        assert r.status_code == 204, r.text
    assert requests.get(f"{pgw.url}/healthz", timeout=10).status_code == 200
