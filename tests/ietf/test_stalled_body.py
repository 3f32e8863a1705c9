"""A creation whose content stops arriving ends after ``server.body_timeout``
with a 408 problem, the connection closed and the bytes received kept: the
client resumes from the URL of the 104."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import requests

from tests.ietf.conftest import local_gateway
from tests.ietf.helpers import append, fields, offset_of, says_complete
from tests.ietf.raw import request
from testservers.gateway import GatewayProcess

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def slow_gateway() -> Iterator[GatewayProcess]:
    yield from local_gateway(body_timeout=TIMEOUT)


@pytest.mark.parametrize("v", [3, 8])
def test_stalled_creation_is_408_and_keeps_its_bytes(slow_gateway: GatewayProcess, v: int) -> None:
    data = os.urandom(200_000)
    started = time.monotonic()
    ex = request(
        "POST", slow_gateway.files_url, fields(v, True), data, send_only=70_000, stall=True
    )
    assert TIMEOUT * 0.5 < time.monotonic() - started < TIMEOUT * 4
    assert [m.status for m in ex.interim] == [104]
    assert ex.status == 408
    assert ex.headers["content-type"].startswith("application/problem+json")
    assert ex.headers.get("connection", "").lower() == "close"
    url = ex.interim[0].headers["location"]
    assert offset_of(url, v) == 70_000
    r = append(url, v, 70_000, data[70_000:], complete=True)
    assert says_complete(v, r.headers)
    assert requests.get(url, timeout=30).content == data
