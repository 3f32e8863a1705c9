"""Objects uploaded with the Qiniu SDK get their SHA-256 computed as the
bytes pass (form, v1 blocks + mkfile, v2 parts + complete), recorded before
post-finish; the qetag the SDK checks stays the answer's ``hash``."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
import qiniu
from qiniu import UploadProgressRecorder
from qiniu.utils import etag_stream

from tests.qiniu.harness import MiB, recorded_sha256, region, token, v2_etag
from testservers.gateway import GatewayProcess


def test_form_upload_gets_its_sha256(qgw: GatewayProcess) -> None:
    data = os.urandom(300_000)
    key = "digest/form.bin"
    ret, info = qiniu.put_data(token(key), key, data, regions=[region(qgw)])
    assert info.status_code == 200, info
    assert ret["hash"] == etag_stream(io.BytesIO(data))
    assert recorded_sha256(qgw, key) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("version", "part_mib"),
    [("v1", 4), ("v2", 4), ("v2", 6)],  # v2 6 MiB parts: on S3 straight into the object's upload
)
def test_resumable_upload_gets_its_sha256(
    qgw: GatewayProcess,
    tmp_path: Path,
    recorder: UploadProgressRecorder,
    version: str,
    part_mib: int,
) -> None:
    data = os.urandom(13 * MiB + 77)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    key = f"digest/resumable-{version}-{part_mib}.bin"
    ret, info = qiniu.put_file_v2(
        token(key),
        key,
        str(path),
        version=version,
        part_size=part_mib * MiB,
        regions=[region(qgw)],
        upload_progress_recorder=recorder,
    )
    assert info.status_code == 200, info
    qetag = qiniu.etag(str(path)) if part_mib == 4 else v2_etag(path, part_mib * MiB)
    assert ret["hash"] == qetag  # unchanged: the qetag the SDK checks
    assert recorded_sha256(qgw, key) == hashlib.sha256(data).hexdigest()
