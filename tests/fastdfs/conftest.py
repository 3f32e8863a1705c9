"""Fixtures for the FastDFS client and backend tests: a fresh test server each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testservers.fastdfs_server import FastDFSServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FastDFSServer]:
    with FastDFSServer(tmp_path / "fdfs") as srv:
        yield srv


@pytest.fixture
def old_server(tmp_path: Path) -> Iterator[FastDFSServer]:
    """A server that does not know command 38 (FastDFS before V6.02)."""
    with FastDFSServer(tmp_path / "fdfs-old", regenerate=False) as srv:
        yield srv
