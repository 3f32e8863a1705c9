"""An IETF upload is an ordinary upload: hooks fire for it (protocol
"ietf"), and it expires and is swept like any other."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import gateway_config
from tests.ietf.helpers import append, create, fields
from tests.ietf.raw import request
from tests.support.targets import LocalTarget
from tests.tus.test_hooks import HookSink, sink, wait_for
from testservers.gateway import GatewayProcess

__all__ = ["sink"]  # the hook receiver fixture, shared with the tus hook tests


@pytest.fixture(scope="module")
def lifecycle_gateway(sink: HookSink) -> Iterator[GatewayProcess]:
    hooks = [{"url": sink.url, "events": ["post-create", "post-finish", "post-terminate"]}]
    config = gateway_config(
        LocalTarget(), hooks=hooks, uploads={"expire_after": 2, "sweep_interval": 1}
    )
    with GatewayProcess(config) as gw:
        yield gw


def test_hooks_fire_for_ietf_uploads(lifecycle_gateway: GatewayProcess, sink: HookSink) -> None:
    url = create(lifecycle_gateway.files_url, 6, b"abc", complete=False).headers["location"]
    upload_id = url.rsplit("/", 1)[1]
    assert append(url, 6, 3, b"def", complete=True).status == 201
    wait_for(lambda: "post-finish" in sink.events(upload_id))
    finish = next(e for e in sink.received if e["id"] == upload_id and e["event"] == "post-finish")
    assert finish["protocol"] == "ietf"
    assert finish["size"] == 6
    cancelled = create(lifecycle_gateway.files_url, 8, complete=False).headers["location"]
    cancelled_id = cancelled.rsplit("/", 1)[1]
    assert request("DELETE", cancelled, fields(8)).status == 204
    wait_for(lambda: "post-terminate" in sink.events(cancelled_id))
    assert sink.events(cancelled_id) == ["post-create", "post-terminate"]


def test_unfinished_ietf_upload_expires(lifecycle_gateway: GatewayProcess) -> None:
    ex = create(lifecycle_gateway.files_url, 8, b"abc", complete=False)
    assert "max-age=" in ex.headers["upload-limit"]
    url = ex.headers["location"]
    deadline = time.time() + 10
    status = 204
    while status == 204 and time.time() < deadline:
        time.sleep(0.5)
        status = request("HEAD", url, fields(8)).status
    assert status in (404, 410)  # expired, then swept
