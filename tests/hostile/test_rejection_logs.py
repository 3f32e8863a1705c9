"""Class 10 of issue 15: requests aiohttp itself rejects (a bad request line,
an over-long or duplicate header, a broken chunked body) are answered 400 and
logged as ONE WARNING line naming the cause — no ERROR, no traceback — with
a request id (the one answered to the client when a handler ran)."""

from __future__ import annotations

import re
import time

import pytest
import requests

from tests.hostile.rawhttp import exchange, path_of
from tests.tus.helpers import create
from testservers.gateway import GatewayProcess

PATCH = (
    "PATCH {path} HTTP/1.1\r\nHost: gw\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
    "Content-Type: application/offset+octet-stream\r\nTransfer-Encoding: chunked"
)
REJECTED = {
    "bad-method": ("G@T / HTTP/1.1\r\nHost: gw", b"", "BadHttpMethod"),
    "long-header": ("GET / HTTP/1.1\r\nHost: gw\r\nX-Big: " + "a" * 10_000, b"", "LineTooLong"),
    "duplicate-length": (
        "POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 6",
        b"",
        "BadHttpMessage",
    ),
    "chunk-bad-hex": (PATCH, b"zz\r\nabc\r\n0\r\n\r\n", "TransferEncodingError"),
    "chunk-size-line": (PATCH, b"1" * 100_000 + b"\r\n", "RequestPayloadError"),
}


def _log_size(gw: GatewayProcess) -> int:
    return gw.log_path.stat().st_size


def _log_since(gw: GatewayProcess, offset: int) -> list[str]:
    """The log's lines since ``offset``, but the access log's (one per request)."""
    with open(gw.log_path, "rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    return [line for line in lines if " gateway.access " not in line]


@pytest.mark.parametrize("name", list(REJECTED))
def test_one_warning_line_per_rejection(pgw: GatewayProcess, name: str) -> None:
    head, body, cause = REJECTED[name]
    url = create(pgw.files_url, 100)
    before = _log_size(pgw)
    status, answer = exchange(pgw.url, head.format(path=path_of(url)), body)
    assert status == 400, answer[:300]
    deadline = time.monotonic() + 5
    while not (lines := _log_since(pgw, before)) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # anything else it would log comes with the same request
    lines = _log_since(pgw, before)
    if name == "bad-method":  # aiohttp logs a first-request bad method at DEBUG (port scans)
        assert lines == []
        return
    assert len(lines) == 1, lines
    logged = re.search(
        r" WARNING aiohttp\.server \[req ([0-9a-f]{24})\]: rejected a malformed", lines[0]
    )
    assert logged, lines[0]
    answered = re.search(rb"\r\nX-Request-Id: (\S+)\r\n", answer)
    if name == "chunk-size-line":  # a handler ran and answered: the line has its id
        assert answered and answered[1].decode() == logged[1], (answer[:400], lines[0])
    assert cause in lines[0] and len(lines[0]) < 400
    counted = requests.get(f"{pgw.url}/metrics", timeout=10).text
    assert f'upload_gateway_rejected_requests_total{{cause="{cause}"}}' in counted
