"""Progress ``104`` responses with ``Upload-Offset`` while content arrives
(``gateway/protocols/ietf/progress.py``), seen with the raw client: one
after each saved slice, at multiples of ``SLICE`` of the upload, never with
``Location`` after the first, and each one an acknowledgement a crash does
not take back."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from gateway.protocols.ietf.progress import SLICE
from tests.ietf.conftest import local_gateway
from tests.ietf.helpers import PARTIAL, append, create, fields, says_complete, wait_offset
from tests.ietf.raw import Message, _read_message, _Reader, request
from testservers.gateway import GatewayProcess

SIZE = 2 * SLICE + 1_000_000


@pytest.fixture(scope="module")
def local_gw() -> Iterator[GatewayProcess]:
    yield from local_gateway()


def _progress(interim: list[Message]) -> list[int]:
    """The offsets of the progress 104s (the creation's first one has the URL)."""
    return [int(m.headers["upload-offset"]) for m in interim if "location" not in m.headers]


@pytest.mark.parametrize("v", [5, 6, 8])
def test_a_creation_reports_each_saved_slice(local_gw: GatewayProcess, v: int) -> None:
    data = os.urandom(SIZE)
    ex = create(local_gw.files_url, v, data, complete=True)
    assert ex.status == 201 and says_complete(v, ex.headers)
    first, *rest = ex.interim
    assert first.headers["location"] == ex.headers["location"]
    assert [m.status for m in rest] == [104, 104]
    assert _progress(ex.interim) == [SLICE, 2 * SLICE]
    for message in rest:
        assert "location" not in message.headers
        assert message.headers["upload-draft-interop-version"] == str(v)
    got = requests.get(ex.headers["location"], timeout=60).content
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_a_chunked_creation_reports_progress_too(local_gw: GatewayProcess) -> None:
    data = os.urandom(SIZE)
    ex = request("POST", local_gw.files_url, fields(8, True), data, chunked=True, timeout=60)
    assert ex.status == 201 and says_complete(8, ex.headers)
    assert _progress(ex.interim) == [SLICE, 2 * SLICE]
    assert requests.get(ex.headers["location"], timeout=60).content == data


def test_an_append_reports_at_multiples_of_the_slice(gateway: GatewayProcess) -> None:
    """On every backend (S3: the slices end on part boundaries)."""
    head, rest = os.urandom(1000), os.urandom(SIZE)
    ex = create(gateway.files_url, 8, head, complete=False)
    url = ex.headers["location"]
    ex = append(url, 8, len(head), rest, complete=True)
    assert ex.status == 200 and says_complete(8, ex.headers)
    assert _progress(ex.interim) == [SLICE, 2 * SLICE]  # of the upload, not of the request
    assert all("location" not in m.headers for m in ex.interim)
    assert requests.get(url, timeout=60).content == head + rest


def test_no_progress_before_interop_5_without_a_version_or_with_a_content_digest(
    local_gw: GatewayProcess,
) -> None:
    data = os.urandom(SIZE)
    ex = create(local_gw.files_url, None, data, complete=True)
    assert ex.status == 201 and ex.interim == []  # no 104 at all without a version
    for v in (3, 4):  # drafts -01, -02 define no progress 104
        ex = create(local_gw.files_url, v, data, complete=True)
        assert ex.status == 201 and [m.status for m in ex.interim] == [104]
        assert _progress(ex.interim) == []
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    ex = create(local_gw.files_url, 8, data, complete=True, Content_Digest=f"sha-256=:{digest}:")
    assert ex.status == 201 and says_complete(8, ex.headers)
    assert _progress(ex.interim) == []  # its bytes stand or fall together: one write


def test_a_reported_offset_survives_a_crash() -> None:
    """The gateway is killed (SIGKILL) right after a progress 104: the
    offset it reported is still there after the restart."""
    gen = local_gateway()
    gw = next(gen)
    try:
        ex = create(gw.files_url, 8, complete=False, Upload_Length=str(SIZE))
        url = ex.headers["location"]
        parts = urlsplit(url)
        data = os.urandom(SIZE)
        head = (
            f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Upload-Draft-Interop-Version: 8\r\nUpload-Complete: ?1\r\nUpload-Offset: 0\r\n"
            f"Content-Type: {PARTIAL}\r\nContent-Length: {SIZE}\r\n\r\n"
        ).encode()
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall(head + data[: SLICE + SLICE // 2])
            message = _read_message(_Reader(sock), "PATCH")
            assert message is not None and message.status == 104
            reported = int(message.headers["upload-offset"])
            gw.kill()  # a crash, while the client still holds the connection
        assert reported == SLICE
        gw.start()
        assert wait_offset(url, reported) >= reported
        tail = data[reported:]
        ex = append(url, 8, reported, tail, complete=True)
        assert ex.status == 200
        assert requests.get(url, timeout=60).content == data
    finally:
        gen.close()
