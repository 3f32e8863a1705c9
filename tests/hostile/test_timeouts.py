"""Class 7 (its read-timeout half) of issue 15: a connection that never
finishes its request headers is closed after ``server.header_timeout`` however
slowly it dribbles, and a request body that stops arriving ends after
``server.body_timeout`` with 408 — a tus PATCH keeping the bytes it received,
so the upload resumes at once; Qiniu's form, v1 and v2 bodies likewise."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import get_target
from tests.hostile.conftest import parsing_target
from tests.hostile.rawhttp import path_of
from tests.qiniu.harness import qiniu_config, token
from tests.tus.helpers import create, offset_of, patch
from testservers.gateway import GatewayProcess

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def tgw() -> Iterator[GatewayProcess]:
    config = qiniu_config(get_target(parsing_target()))
    config["server"] = {"header_timeout": TIMEOUT, "body_timeout": TIMEOUT}
    with GatewayProcess(config) as gw:
        yield gw


def _connect(gw: GatewayProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
    sock.settimeout(30)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_slow_headers_are_cut(tgw: GatewayProcess) -> None:
    sock = _connect(tgw)
    started = time.monotonic()
    head = b"GET /healthz HTTP/1.1\r\nHost: gw\r\n" + b"X-Slow: " + b"a" * 40
    closed = False
    for byte in head:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        time.sleep(0.1)
        if time.monotonic() - started > 4 * TIMEOUT:
            break
    if not closed:
        sock.settimeout(4 * TIMEOUT)
        assert _answer(sock) == b""  # closed by the server, nothing answered
    assert time.monotonic() - started < 4 * TIMEOUT + 1
    sock.close()


def test_an_idle_connection_is_closed(tgw: GatewayProcess) -> None:
    sock = _connect(tgw)
    started = time.monotonic()
    assert _answer(sock) == b""
    assert TIMEOUT * 0.5 < time.monotonic() - started < 4 * TIMEOUT
    sock.close()


#: how soon after a 408 the connection must be closed (aiohttp's lingering,
#: waiting for the rest of a body nobody reads, took 10 s)
PROMPT_CLOSE = 2.0


def _stalled(gw: GatewayProcess, head: str, first: bytes) -> tuple[int, float]:
    """Send ``head`` and the first bytes of the body, then nothing: the
    status answered and after how long. The server closes the connection
    right after the answer."""
    sock = _connect(gw)
    started = time.monotonic()
    sock.sendall(head.encode() + b"\r\n\r\n" + first)
    answer = sock.recv(65536)
    took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    sock.settimeout(PROMPT_CLOSE + 15)
    _answer(sock)  # the rest of the answer, until the server closes
    closed_after = time.monotonic() - started - took
    sock.close()
    assert closed_after < PROMPT_CLOSE, f"closed {closed_after:.1f}s after the answer"
    return int(answer[9:12]), took


def test_a_stalled_tus_patch_ends_with_408_and_keeps_its_bytes(tgw: GatewayProcess) -> None:
    url = create(tgw.files_url, 1000)
    head = (
        f"PATCH {path_of(url)} HTTP/1.1\r\nHost: gw\r\nTus-Resumable: 1.0.0\r\n"
        "Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
        "Content-Length: 1000"
    )
    status, took = _stalled(tgw, head, b"x" * 10)
    assert status == 408
    assert TIMEOUT * 0.5 < took < 4 * TIMEOUT
    assert offset_of(url) == 10
    r = patch(url, 10, b"y" * 990)  # resumes at once: no 423, no waiting for a lock
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "1000"
    assert requests.get(url, timeout=30).content == b"x" * 10 + b"y" * 990


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def test_stalled_qiniu_bodies_end_with_408(tgw: GatewayProcess) -> None:
    auth = f"Authorization: UpToken {token()}"
    boundary = "xxBOUNDARYxx"
    form_head = (
        f"POST / HTTP/1.1\r\nHost: gw\r\nContent-Type: multipart/form-data; boundary={boundary}"
        "\r\nContent-Length: 100000"
    )
    first = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\n{token()}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'
    ).encode() + b"z" * 100
    uploads = f"/buckets/photos/objects/{_b64('stalled')}/uploads"
    upload_id = requests.post(
        tgw.url + uploads, headers={"Authorization": f"UpToken {token()}"}, timeout=30
    ).json()["uploadId"]
    cases = {
        "form": (form_head, first),
        "mkblk": (
            f"POST /mkblk/1000 HTTP/1.1\r\nHost: gw\r\n{auth}\r\nContent-Length: 1000",
            b"a" * 10,
        ),
        "v2 part": (
            f"PUT {uploads}/{upload_id}/1 HTTP/1.1\r\nHost: gw\r\n{auth}\r\nContent-Length: 1000",
            b"a" * 10,
        ),
        "mkfile": (
            f"POST /mkfile/10 HTTP/1.1\r\nHost: gw\r\n{auth}\r\nContent-Length: 500",
            b"ctx",
        ),
        "v2 complete": (
            f"POST {uploads}/{upload_id} HTTP/1.1\r\nHost: gw\r\n{auth}\r\nContent-Length: 500",
            b'{"parts"',
        ),
    }
    for name, (head, body) in cases.items():
        status, took = _stalled(tgw, head, body)
        assert status == 408, name
        assert took < 4 * TIMEOUT, name
    assert "Traceback" not in tgw.log()
