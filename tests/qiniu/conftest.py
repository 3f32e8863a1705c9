"""Fixtures of the Qiniu suite: a gateway with the Qiniu API on, and the
SDK's temporary files (resume records, region caches) kept in a test folder."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from qiniu import UploadProgressRecorder

from tests.qiniu.harness import MiB, qiniu_config
from tests.support.targets import Target
from testservers.gateway import GatewayProcess


@pytest.fixture(scope="session", autouse=True)
def isolated_tmpdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The SDK writes under ``tempfile.gettempdir()``: point it at a test folder."""
    folder = tmp_path_factory.mktemp("sdk-tmp")
    saved_env, saved_dir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)
    yield folder
    tempfile.tempdir = saved_dir
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env


@pytest.fixture
def recorder(tmp_path: Path) -> UploadProgressRecorder:
    folder = tmp_path / "records"
    folder.mkdir()
    return UploadProgressRecorder(str(folder))


@pytest.fixture(scope="session")
def qgw(target: Target) -> Iterator[GatewayProcess]:
    """One gateway with the Qiniu API per backend target."""
    with GatewayProcess(qiniu_config(target)) as gw:
        yield gw


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "big.bin"
    path.write_bytes(os.urandom(20 * MiB + 12345))
    return path
