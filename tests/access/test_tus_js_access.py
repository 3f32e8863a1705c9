"""tus-js-client (Node) under access control: an UpToken and a JWT carried
on every request through an interrupted, resumed upload; the upload URL then
refused without the header and with another user's credential."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import requests

from tests.access.support import auth, bearer, uptoken
from tests.support.cutproxy import CutProxy
from tests.tus.helpers import TUS
from tests.tus.test_tus_js_client import run_tus_js
from testservers.gateway import GatewayProcess


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("js") / "nine.bin"
    path.write_bytes(os.urandom(9_000_000))
    return path


@pytest.mark.parametrize("kind", ["uptoken", "jwt"])
def test_tus_js_client_with_a_credential(agw: GatewayProcess, source: Path, kind: str) -> None:
    token = uptoken(endUser="js") if kind == "uptoken" else bearer({"scope": "default"}, sub="js")
    with CutProxy(agw.port) as proxy:
        proxy.cut_next_after(3_000_000)  # inside the first PATCH: the client resumes
        url = run_tus_js(
            proxy.url + "/files/",
            source,
            {"headers": auth(token), "chunkSize": 4_000_000},
        )
        assert proxy.cuts == 1
    url = url.replace(proxy.url, agw.url)
    r = requests.get(url, headers=auth(token), timeout=60)
    assert r.status_code == 200
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(source.read_bytes()).digest()
    stranger = uptoken(endUser="someone-else")
    for headers in ({}, auth(stranger)):
        assert requests.head(url, headers={**TUS, **headers}, timeout=30).status_code == 404
        assert requests.get(url, headers=headers, timeout=30).status_code == 404


def test_tus_js_client_without_a_credential_is_refused(agw: GatewayProcess, source: Path) -> None:
    with pytest.raises(AssertionError) as info:
        run_tus_js(agw.files_url, source, {"retryDelays": []})
    assert "401" in str(info.value)
