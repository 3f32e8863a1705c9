"""The official Node ``qiniu`` SDK (npm, tests/js/node_modules) against the
gateway: form, v1 and v2 (chunked request bodies, crc32 after the file)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import qiniu

from tests.qiniu.harness import MiB, file_sha256, read_back, token, v2_etag
from testservers.gateway import GatewayProcess

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE.parent / "js" / "node_modules"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_MODULES / "qiniu").is_dir(),
    reason="node or tests/js/node_modules/qiniu missing (npm ci in tests/js)",
)


def _node(gw: GatewayProcess, mode: str, key: str, path: Path, part_size: int = 0) -> Any:
    args = ["node", str(HERE / "node_upload.cjs"), f"127.0.0.1:{gw.port}", mode, token(), key]
    args += [str(path)] + ([str(part_size)] if part_size else [])
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("mode", "size", "part_size"),
    [
        ("form", MiB + 17, 0),
        ("v1", 9 * MiB + 3, 0),
        ("v2", 9 * MiB + 3, 0),
        ("v2", 9 * MiB, 2 * MiB),
    ],
)
def test_node_sdk(
    qgw: GatewayProcess, tmp_path: Path, mode: str, size: int, part_size: int
) -> None:
    path = tmp_path / "node.bin"
    path.write_bytes(os.urandom(size))
    key = f"node/{mode}-{part_size}.bin"
    result = _node(qgw, mode, key, path, part_size)
    assert result["status"] == 200, result
    assert result["reqid"]
    assert result["data"]["key"] == key
    expected = v2_etag(path, part_size) if part_size else qiniu.etag(str(path))
    assert result["data"]["hash"] == expected
    assert read_back(qgw, key) == file_sha256(path)
