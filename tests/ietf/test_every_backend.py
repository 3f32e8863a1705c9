"""Each interop version's uploads on every backend: optimistic creation
(the whole file in one request), creation cut off after the 104 and resumed
from the URL it carried, and a tus upload mixed with an IETF upload on one
gateway, each read back through the other protocol."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest
import requests

from tests.ietf.helpers import (
    PARTIAL,
    VERSIONS,
    append,
    create,
    fields,
    offset_of,
    says_complete,
    wait_offset,
)
from tests.ietf.raw import Exchange, request
from tests.support.targets import Target
from tests.tus.helpers import TUS, head, patch
from tests.tus.helpers import create as tus_create
from testservers.gateway import GatewayProcess

MiB = 1024 * 1024


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("v", VERSIONS)
def test_optimistic_creation(gateway: GatewayProcess, v: int) -> None:
    data = os.urandom(MiB + 7)
    ex = create(gateway.files_url, v, data, complete=True, Content_Type="text/plain")
    assert [m.status for m in ex.interim] == [104]
    assert ex.status == 201
    assert says_complete(v, ex.headers)
    got = requests.get(ex.headers["location"], timeout=60)
    assert _sha(got.content) == _sha(data)
    assert got.headers["Content-Type"] == "text/plain"


@pytest.mark.parametrize("v", VERSIONS)
def test_creation_cut_after_104_resumes_from_its_url(
    gateway: GatewayProcess, target: Target, v: int
) -> None:
    data = os.urandom(3 * MiB + 11)
    sent = 2 * MiB + 5
    ex = request(
        "POST",
        gateway.files_url,
        fields(v, True),
        data,
        send_only=sent,
        await_interim=True,
    )
    assert [m.status for m in ex.interim] == [104]
    url = ex.interim[0].headers["location"]
    offset = wait_offset(url, sent, timeout=5)
    assert offset_of(url, v) == offset
    if target.name == "local":
        assert offset == sent  # every byte that arrived was kept
    assert 0 <= offset <= sent
    state = request("HEAD", url, fields(v))
    assert not says_complete(v, state.headers)  # cut short: not complete
    assert state.headers["upload-length"] == str(len(data))  # from Content-Length + ?1
    r = append(url, v, offset, data[offset:], complete=True)
    assert r.status in (200, 201)
    assert says_complete(v, r.headers)
    assert _sha(requests.get(url, timeout=60).content) == _sha(data)


def test_tus_and_ietf_uploads_mixed(gateway: GatewayProcess) -> None:
    tus_data, ietf_data = os.urandom(MiB + 3), os.urandom(MiB + 5)
    tus_url = tus_create(gateway.files_url, len(tus_data), {"filename": "t.bin"})
    ietf_url = create(gateway.files_url, 6, complete=False, Upload_Length=str(len(ietf_data)))
    ietf_url_s = ietf_url.headers["location"]
    half = MiB // 2
    assert patch(tus_url, 0, tus_data[:half]).status_code == 204
    assert append(ietf_url_s, 6, 0, ietf_data[:half], complete=False).status == 201
    # each protocol reads the other's upload
    assert int(head(ietf_url_s).headers["Upload-Offset"]) == half
    assert offset_of(tus_url, 8) == half
    # and continues it: tus finishes the IETF upload, IETF the tus one
    assert patch(ietf_url_s, half, ietf_data[half:]).status_code == 204
    r = append(tus_url, 5, half, tus_data[half:], complete=True)
    assert r.status == 201
    assert says_complete(5, r.headers)
    for url, data in ((tus_url, tus_data), (ietf_url_s, ietf_data)):
        assert _sha(requests.get(url, timeout=60).content) == _sha(data)
        final = requests.head(url, headers=TUS, timeout=10)
        assert "X-Object-Url" in final.headers


def _trickling_append(url: str, v: int, data: bytes) -> tuple[threading.Thread, list[Exchange]]:
    """An append of ``data`` at 0 whose content trickles in (a client whose
    connection went bad), started in a thread."""
    result: list[Exchange] = []

    def trickle() -> None:
        h = fields(v, True, Upload_Offset="0", Content_Type=PARTIAL)
        result.append(request("PATCH", url, h, data, trickle=0.1, timeout=60))

    writer = threading.Thread(target=trickle)
    writer.start()
    time.sleep(0.6)
    return writer, result


def test_offset_retrieval_stops_an_append_in_flight(gateway: GatewayProcess) -> None:
    v = 10
    data = os.urandom(2 * MiB)
    url = create(gateway.files_url, v, complete=False).headers["location"]
    writer, result = _trickling_append(url, v, data)
    offset = offset_of(url, v)  # the trickling append stops and saves first
    writer.join(30)
    final = result[0].final
    assert final is None or final.status == 204  # it saved what it had, not an error
    assert 0 <= offset < len(data)
    assert offset_of(url, v) == offset  # nothing appended after the answer
    r = append(url, v, offset, data[offset:], complete=True)
    assert r.status == 200
    assert _sha(requests.get(url, timeout=60).content) == _sha(data)


def test_two_appends_never_interleave(gateway: GatewayProcess) -> None:
    v = 6
    data = os.urandom(2 * MiB)
    url = create(gateway.files_url, v, complete=False).headers["location"]
    writer, _ = _trickling_append(url, v, data)
    # the client retries from 0: it waits for the first, which stops and saves
    r = append(url, v, 0, data, complete=True)
    writer.join(30)
    if r.status == 409:  # the first had saved some bytes: resume where it says
        offset = int(r.headers["upload-offset"])
        assert offset == offset_of(url, v)
        r = append(url, v, offset, data[offset:], complete=True)
    assert r.status == 201
    assert _sha(requests.get(url, timeout=60).content) == _sha(data)
