"""Real tus clients declaring the file's digest (RFC 9530 ``Repr-Digest`` on
the creation request): tuspy and tus-js-client (Node); plain, deferred-length
and parallel (concatenated) uploads with tus-js-client, plain with tuspy (it
implements neither deferred length nor concatenation; tests/digest/test_verify.py
covers them over raw tus); a right digest verified and recorded, a wrong one
refused with nothing committed, and a resume across a gateway SIGKILL (the
hash state survives in the state store)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError

from gateway.core.digests import SHA256, STATE
from tests.conftest import gateway_config
from tests.digest.helpers import record_of, refused, repr_digest
from tests.support.targets import Target
from tests.tus.helpers import download
from testservers.gateway import GatewayProcess

JS_DIR = Path(__file__).resolve().parents[1] / "js"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("digest") / "source.bin"
    path.write_bytes(os.urandom(6 * MiB + 4321))
    return path


def _object(gw: GatewayProcess, url: str) -> requests.Response:
    return requests.get(f"{gw.url}/objects/default/{url.rsplit('/', 1)[1]}", timeout=60)


def _tus_js(
    endpoint: str, path: Path, digest: str, options: dict[str, object]
) -> dict[str, object]:
    node = shutil.which("node")
    assert node, "node is required (the test command installs it)"
    proc = subprocess.run(
        [node, str(JS_DIR / "tus_digest.mjs"), endpoint, str(path), digest, json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=JS_DIR,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _nothing_committed(gw: GatewayProcess, before: dict[str, str | None]) -> None:
    """One more upload was refused for its digest, and no object is at its key."""
    new = {i: key for i, key in refused(gw).items() if i not in before}
    assert len(new) == 1, new
    for key in new.values():
        assert key is not None
        url = f"{gw.url}/objects/default/{key}"
        assert requests.get(url, timeout=60).status_code == 404


def test_tuspy_right_and_wrong_digest(gateway: GatewayProcess, source: Path) -> None:
    data = source.read_bytes()
    client = tus.TusClient(gateway.files_url, headers={"Repr-Digest": repr_digest(data)})
    uploader = client.uploader(str(source), chunk_size=2 * MiB)
    uploader.upload()
    assert record_of(gateway, uploader.url).extra[SHA256] == hashlib.sha256(data).hexdigest()
    assert hashlib.sha256(download(uploader.url)).digest() == hashlib.sha256(data).digest()

    before = refused(gateway)
    client = tus.TusClient(gateway.files_url, headers={"Repr-Digest": repr_digest(b"other")})
    uploader = client.uploader(str(source), chunk_size=2 * MiB, retries=0)
    with pytest.raises(TusCommunicationError) as failed:
        uploader.upload()
    assert failed.value.status_code == 460
    assert _object(gateway, uploader.url).status_code == 404
    _nothing_committed(gateway, before)


MODES: dict[str, dict[str, object]] = {
    "plain": {},
    "deferred": {"uploadLengthDeferred": True},
    "parallel": {"parallelUploads": 3},
}


@pytest.mark.parametrize("mode", list(MODES))
def test_tus_js_client_right_and_wrong_digest(
    gateway: GatewayProcess, source: Path, mode: str
) -> None:
    data = source.read_bytes()
    options = {"chunkSize": 2 * MiB, **MODES[mode]}
    done = _tus_js(gateway.files_url, source, repr_digest(data), options)
    assert "error" not in done, done
    if mode == "deferred":  # the creation declared no length: the last PATCH does
        assert done["creations"] == {"deferred": 1, "length": 0}, done
    url = str(done["url"])
    record = record_of(gateway, url)
    assert record.extra[SHA256] == hashlib.sha256(data).hexdigest()
    assert (record.length, record.offset) == (len(data), len(data))
    assert download(url) == data

    before = refused(gateway)
    failed = _tus_js(gateway.files_url, source, repr_digest(b"other"), options)
    assert failed["status"] == 460, failed
    assert "Repr-Digest mismatch" in str(failed["body"])
    if failed.get("url"):  # parallel: the final's creation is refused, it has none
        assert _object(gateway, str(failed["url"])).status_code == 404
    _nothing_committed(gateway, before)


@pytest.fixture()
def own_gateway(target: Target) -> Iterator[GatewayProcess]:
    with GatewayProcess(gateway_config(target)) as gw:
        yield gw


def test_tuspy_resume_across_a_sigkill_keeps_the_hash_state(
    own_gateway: GatewayProcess, source: Path
) -> None:
    gw, data = own_gateway, source.read_bytes()
    client = tus.TusClient(gw.files_url, headers={"Repr-Digest": repr_digest(data)})
    uploader = client.uploader(str(source), chunk_size=MiB)
    uploader.upload(stop_at=3 * MiB)
    url = uploader.url
    saved = record_of(gw, url).extra[STATE]
    assert saved["offset"] == 3 * MiB
    gw.kill()
    gw.start()  # same port, state and data
    client = tus.TusClient(gw.files_url, headers={"Repr-Digest": repr_digest(data)})
    uploader = client.uploader(str(source), chunk_size=MiB, url=url)
    assert uploader.get_offset() == 3 * MiB
    uploader.upload()
    assert record_of(gw, url).extra[SHA256] == hashlib.sha256(data).hexdigest()
    assert "re-read" not in gw.log()  # continued from the saved state, nothing read back
