"""Instant upload under the business service's hooks (a real hook server):
the pre-finish hook decides as for any upload — a refusal reaches the
creation and no object appears — and an accepted instant upload is seen by
pre-create, pre-finish and the post-finish webhook (with its SHA-256)."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator

import pytest
import requests

from tests.access.hook_server import SECRET, HookServer
from tests.conftest import gateway_config
from tests.instant.test_instant_upload import create, repr_digest, upload
from tests.support.targets import Target
from tests.tus.helpers import TUS
from testservers.gateway import GatewayProcess


@pytest.fixture(scope="module")
def hgw(target: Target, hooks: HookServer) -> Iterator[GatewayProcess]:
    events = ["pre-create", "pre-finish", "post-finish"]
    hook = {"url": hooks.url, "events": events, "secret": SECRET, "timeout": 5}
    with GatewayProcess(gateway_config(target, hooks=[hook])) as gw:
        yield gw


def _decide(value: str) -> str:
    return f"decide {base64.b64encode(value.encode()).decode()}"


def test_the_pre_finish_hook_decides_an_instant_upload(
    hgw: GatewayProcess, hooks: HookServer
) -> None:
    data = os.urandom(1024 * 1024 + 1)
    upload(hgw, data)
    h = {**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": _decide("reject-finish")}
    h["Repr-Digest"] = repr_digest(data)
    refused = requests.post(hgw.files_url, headers=h, timeout=30)
    assert (refused.status_code, refused.text.strip()) == (422, "virus found")
    refused_key = hooks.events("pre-finish")[-1]["key"]
    assert requests.get(f"{hgw.url}/objects/default/{refused_key}", timeout=30).status_code == 404

    accepted = create(hgw, data)
    assert accepted.headers["Upload-Offset"] == str(len(data))
    upload_id = accepted.headers["Location"].rsplit("/", 1)[1]
    assert hooks.events("pre-create")[-1]["key"] == upload_id
    assert hooks.events("pre-finish")[-1]["id"] == upload_id
    deadline = time.monotonic() + 10
    while not [e for e in hooks.events("post-finish") if e["id"] == upload_id]:
        assert time.monotonic() < deadline, "no post-finish webhook"
        time.sleep(0.05)
    [finished] = [e for e in hooks.events("post-finish") if e["id"] == upload_id]
    assert finished["size"] == len(data) and finished["offset"] == len(data)
