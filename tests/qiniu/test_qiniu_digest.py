"""Objects uploaded with the Qiniu SDK get their SHA-256 computed as the
bytes pass (form, v1 blocks + mkfile, v2 parts + complete), recorded before
post-finish; the qetag the SDK checks stays the answer's ``hash``."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
from pathlib import Path

import pytest
import qiniu
from qiniu import UploadProgressRecorder
from qiniu.utils import etag_stream

from gateway.core.digests import SHA256
from gateway.core.records import Status, UploadRecord
from tests.qiniu.harness import BUCKET, MiB, region, token
from testservers.gateway import GatewayProcess


def _sha256_of(gw: GatewayProcess, key: str) -> str:
    with sqlite3.connect(gw.workdir / "state.db") as db:
        rows = db.execute("SELECT data FROM uploads").fetchall()
    records = [UploadRecord.from_json(r[0]) for r in rows]
    [found] = [
        r for r in records if r.bucket == BUCKET and r.key == key and r.status is Status.FINISHED
    ]
    return str(found.extra[SHA256])


def test_form_upload_gets_its_sha256(qgw: GatewayProcess) -> None:
    data = os.urandom(300_000)
    key = "digest/form.bin"
    ret, info = qiniu.put_data(token(key), key, data, regions=[region(qgw)])
    assert info.status_code == 200, info
    assert ret["hash"] == etag_stream(io.BytesIO(data))
    assert _sha256_of(qgw, key) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_resumable_upload_gets_its_sha256(
    qgw: GatewayProcess, tmp_path: Path, recorder: UploadProgressRecorder, version: str
) -> None:
    data = os.urandom(9 * MiB + 77)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    key = f"digest/resumable-{version}.bin"
    ret, info = qiniu.put_file_v2(
        token(key),
        key,
        str(path),
        version=version,
        part_size=4 * MiB,
        regions=[region(qgw)],
        upload_progress_recorder=recorder,
    )
    assert info.status_code == 200, info
    assert ret["hash"] == qiniu.etag(str(path))
    assert _sha256_of(qgw, key) == hashlib.sha256(data).hexdigest()
