"""tus-js-client 4.3.1 under Node speaking the IETF drafts — ``protocol:
'ietf-draft-03'`` (interop 5) and ``'ietf-draft-05'`` (interop 6) — on every
backend: the whole file in one request, in chunks, and cut off mid-request
then resumed by the client itself; byte-identical by SHA-256."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import requests

from tests.support.cutproxy import CutProxy
from tests.tus.test_tus_js_client import run_tus_js
from testservers.gateway import GatewayProcess

MiB = 1024 * 1024
PROTOCOLS = ["ietf-draft-03", "ietf-draft-05"]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ietf-js") / "source.bin"
    path.write_bytes(os.urandom(3 * MiB + 4321))
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check(url: str, source: Path) -> None:
    got = requests.get(url, timeout=120)
    assert got.status_code == 200
    assert _sha(got.content) == _sha(source.read_bytes())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_whole_file(gateway: GatewayProcess, source: Path, protocol: str) -> None:
    url = run_tus_js(gateway.files_url, source, {"protocol": protocol})
    _check(url, source)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_whole_file_in_the_creation_request(
    gateway: GatewayProcess, source: Path, protocol: str
) -> None:
    options = {"protocol": protocol, "uploadDataDuringCreation": True}
    url = run_tus_js(gateway.files_url, source, options)
    _check(url, source)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_chunked(gateway: GatewayProcess, source: Path, protocol: str) -> None:
    options = {"protocol": protocol, "chunkSize": MiB + 17}
    url = run_tus_js(gateway.files_url, source, options)
    _check(url, source)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_interrupted_and_resumed(gateway: GatewayProcess, source: Path, protocol: str) -> None:
    with CutProxy(gateway.port) as proxy:
        # the creation request is small; the cut falls inside the first append
        proxy.cut_next_after(MiB + MiB // 2)
        options = {"protocol": protocol, "chunkSize": 2 * MiB, "retryDelays": [200, 500, 1000]}
        url = run_tus_js(proxy.url + "/files/", source, options)
        assert proxy.cuts == 1
    _check(url.replace(proxy.url, gateway.url), source)
