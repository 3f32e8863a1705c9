"""The synchronous hooks on IETF uploads, as on tus: pre-create refuses
(its status reaches the client, nothing is created, no 104), rewrites the
key, sets a size limit; pre-finish refuses (the object never appears)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import requests

from tests.access.hook_server import SECRET, HookServer
from tests.conftest import gateway_config
from tests.ietf.helpers import append, create
from tests.support.targets import LocalTarget
from testservers.gateway import GatewayProcess


@pytest.fixture(scope="module")
def hgw(hooks: HookServer) -> Iterator[GatewayProcess]:
    hook = {"url": hooks.url, "events": ["pre-create", "pre-finish"], "secret": SECRET}
    with GatewayProcess(gateway_config(LocalTarget(), hooks=[hook])) as gw:
        yield gw


def _md(**items: str) -> dict[str, str]:
    value = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())
    return {"Upload-Metadata": value}


def test_pre_create_refusal(hgw: GatewayProcess, hooks: HookServer) -> None:
    ex = create(hgw.files_url, 8, b"abc", complete=True, **_md(decide="reject"))
    assert ex.status == 403
    assert ex.interim == []  # refused before anything was created
    assert hooks.events("pre-create")[-1]["protocol"] == "ietf"


def test_pre_create_rewrites_the_key(hgw: GatewayProcess) -> None:
    headers = {**_md(decide="rewrite", filename="r.bin"), "Content-Disposition": "inline"}
    ex = create(hgw.files_url, 6, b"abc", complete=True, **headers)
    assert ex.status == 201
    assert ex.headers["x-object-url"].endswith("/rewritten/None/r.bin")


def test_pre_create_size_limit(hgw: GatewayProcess) -> None:
    ex = create(hgw.files_url, 8, complete=False, **_md(decide="limit"))
    assert ex.status == 201
    url = ex.headers["location"]
    assert append(url, 8, 0, b"x" * 11, complete=True).status == 413
    assert append(url, 8, 0, b"x" * 10, complete=True).status == 200


def test_pre_finish_refusal(hgw: GatewayProcess) -> None:
    ex = create(hgw.files_url, 7, b"abc", complete=False, **_md(decide="reject-finish"))
    url = ex.headers["location"]
    r = append(url, 7, 3, b"def", complete=True)
    assert r.status == 422
    assert requests.get(url, timeout=30).status_code != 200  # never visible
