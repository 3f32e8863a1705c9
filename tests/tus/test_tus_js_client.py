"""tus-js-client 4.3.1 under Node against the gateway."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.tus.helpers import download, head
from testservers.gateway import GatewayProcess

JS_DIR = Path(__file__).resolve().parents[1] / "js"


def run_tus_js(endpoint: str, path: Path, options: dict[str, object]) -> str:
    node = shutil.which("node")
    assert node, "node is required (see README: the test command installs it)"
    assert (JS_DIR / "node_modules" / "tus-js-client").is_dir(), (
        "tests/js/node_modules is missing: run scripts/install-test-deps.sh"
    )
    proc = subprocess.run(
        [node, str(JS_DIR / "tus_upload.mjs"), endpoint, str(path), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=JS_DIR,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return str(json.loads(proc.stdout.strip().splitlines()[-1])["url"])


@pytest.fixture(scope="module")
def twelve_mb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("js") / "twelve.bin"
    path.write_bytes(os.urandom(12_000_000))
    return path


def test_parallel_uploads_use_concatenation(gateway: GatewayProcess, twelve_mb: Path) -> None:
    url = run_tus_js(gateway.files_url, twelve_mb, {"parallelUploads": 3})
    final = head(url)
    assert final.headers["Upload-Concat"].startswith("final;")
    assert len(final.headers["Upload-Concat"].split(" ")) == 3
    got = download(url)
    assert hashlib.sha256(got).digest() == hashlib.sha256(twelve_mb.read_bytes()).digest()


def test_override_patch_method_and_upload_during_creation(
    gateway: GatewayProcess, twelve_mb: Path
) -> None:
    url = run_tus_js(
        gateway.files_url,
        twelve_mb,
        {
            "overridePatchMethod": True,
            "chunkSize": 5 * 1024 * 1024,
            "uploadDataDuringCreation": True,
        },
    )
    got = download(url)
    assert hashlib.sha256(got).digest() == hashlib.sha256(twelve_mb.read_bytes()).digest()
