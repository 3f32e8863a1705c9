"""The official ``qiniu`` Python SDK against the gateway: form, v1 and v2
uploads, resume across a gateway restart. ``hash`` must equal the SDK's own
``qiniu.etag`` (or the v2 formula for parts that are not 4 MiB), and the
object read back through the backend must have the source's SHA-256."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qiniu
from qiniu import UploadProgressRecorder

from tests.qiniu.harness import (
    MiB,
    file_sha256,
    qiniu_config,
    read_back,
    region,
    sha256,
    token,
    v2_etag,
)
from tests.support.targets import Target
from testservers.gateway import GatewayProcess


def _ok(ret: Any, info: Any) -> dict[str, Any]:
    assert info.status_code == 200, info
    assert info.req_id, "X-Reqid missing"
    assert isinstance(ret, dict), info
    return ret


def test_put_data_form(qgw: GatewayProcess, target: Target) -> None:
    data = os.urandom(MiB)
    ret = _ok(*qiniu.put_data(token(), "form/data.bin", data, regions=[region(qgw)]))
    assert ret["key"] == "form/data.bin"
    assert ret["hash"] == qiniu.utils.etag_stream(__import__("io").BytesIO(data))
    assert read_back(qgw, "form/data.bin") == sha256(data)


def test_put_file_form(
    qgw: GatewayProcess, target: Target, tmp_path: Path, recorder: UploadProgressRecorder
) -> None:
    path = tmp_path / "one.bin"
    path.write_bytes(os.urandom(MiB))
    ret = _ok(
        *qiniu.put_file_v2(
            token(),
            "form/file.bin",
            str(path),
            regions=[region(qgw)],
            upload_progress_recorder=recorder,
            params={"x:who": "me"},
        )
    )
    assert ret["hash"] == qiniu.etag(str(path))
    assert read_back(qgw, "form/file.bin") == file_sha256(path)


def test_put_file_v1_parallel_blocks(
    qgw: GatewayProcess, target: Target, big_file: Path, recorder: UploadProgressRecorder
) -> None:
    ret = _ok(
        *qiniu.put_file(
            token(),
            "v1/big.bin",
            str(big_file),
            regions=[region(qgw)],
            upload_progress_recorder=recorder,
            version="v1",
        )
    )
    assert ret["hash"] == qiniu.etag(str(big_file))
    assert read_back(qgw, "v1/big.bin") == file_sha256(big_file)


def test_put_file_v2_4mib_parts(
    qgw: GatewayProcess, target: Target, big_file: Path, recorder: UploadProgressRecorder
) -> None:
    ret = _ok(
        *qiniu.put_file_v2(
            token(),
            "v2/big.bin",
            str(big_file),
            regions=[region(qgw)],
            upload_progress_recorder=recorder,
        )
    )
    assert ret["hash"] == qiniu.etag(str(big_file))
    assert read_back(qgw, "v2/big.bin") == file_sha256(big_file)


def test_put_file_v2_8mib_parts(
    qgw: GatewayProcess, target: Target, big_file: Path, recorder: UploadProgressRecorder
) -> None:
    ret = _ok(
        *qiniu.put_file_v2(
            token(),
            "v2/big8.bin",
            str(big_file),
            regions=[region(qgw)],
            upload_progress_recorder=recorder,
            part_size=8 * MiB,
        )
    )
    # parts that are not 4 MiB: Qiniu names the file with the v2 form
    assert ret["hash"] == v2_etag(big_file, 8 * MiB)
    assert read_back(qgw, "v2/big8.bin") == file_sha256(big_file)


@pytest.fixture(scope="module")
def restartable(target: Target) -> Iterator[GatewayProcess]:
    with GatewayProcess(qiniu_config(target)) as gw:
        yield gw


class _StopAfter:
    """A progress handler that fails the upload after ``parts`` parts, and
    records the first progress figure of a later run (to prove it resumed)."""

    def __init__(self, parts: int, part_size: int) -> None:
        self.limit = parts * part_size
        self.armed = True
        self.first: int | None = None

    def __call__(self, uploaded: int, total: int) -> None:
        if self.first is None:
            self.first = uploaded
        if self.armed and uploaded >= self.limit:
            self.armed = False
            raise RuntimeError("stop here")


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_resume_after_gateway_restart(
    restartable: GatewayProcess,
    target: Target,
    big_file: Path,
    recorder: UploadProgressRecorder,
    version: str,
) -> None:
    key = f"resume/{version}.bin"
    upload_token = token()
    stop = _StopAfter(2, 4 * MiB)
    kwargs: dict[str, Any] = dict(
        regions=[region(restartable)],
        upload_progress_recorder=recorder,
        version=version,
        progress_handler=stop,
    )
    with pytest.raises(RuntimeError, match="stop here"):
        qiniu.put_file(upload_token, key, str(big_file), **kwargs)
    restartable.restart()  # same port, same state: a new process

    stop.first = None
    ret = _ok(*qiniu.put_file(upload_token, key, str(big_file), **kwargs))
    assert stop.first is not None and stop.first > 4 * MiB, "the SDK did not resume"
    assert ret["hash"] == qiniu.etag(str(big_file))
    assert read_back(restartable, key) == file_sha256(big_file)
