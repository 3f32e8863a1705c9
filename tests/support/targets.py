"""Backends under test. Every protocol suite and the backend conformance suite
run once per target here (``pytest -k local`` etc. to pick one).

To add a backend: write a ``Target`` subclass whose ``backend_config`` returns
the ``backends.<name>`` mapping for config.yaml (starting its server lazily,
once per session, through ``tests/servers``), and register it in ``TARGETS``.
``GATEWAY_TEST_BACKENDS=local,s3-moto`` limits a run to some targets.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Target:
    name = "?"

    def backend_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def leftovers(self) -> list[str]:
        """Temporary pieces still in the store (multipart uploads, tails,
        segments); an empty list after every test that cleaned up."""
        return []

    def stop(self) -> None:
        """Stop servers this target started."""


class LocalTarget(Target):
    name = "local"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gw-local-"))

    def backend_config(self) -> dict[str, Any]:
        return {"type": "local", "root": str(self.root / "data")}

    def leftovers(self) -> list[str]:
        tmp = self.root / "data" / "objects"
        return [p.name for p in tmp.glob(".tmp-*")] if tmp.exists() else []


class FastDFSTarget(Target):
    """The FastDFS test server (tracker + storage, in-process thread)."""

    name = "fastdfs"

    def __init__(self) -> None:
        from tests.servers.fastdfs_server import FastDFSServer

        self.server = FastDFSServer().start()

    def backend_config(self) -> dict[str, Any]:
        return {"type": "fastdfs", "trackers": [self.server.tracker_addr]}

    def leftovers(self) -> list[str]:
        # An assembly's temporary is an appender file, indistinguishable from a
        # live stream (which other suites leave behind on purpose); tests/fastdfs
        # checks server.files(appender=True) around its own operations instead.
        return []

    def stop(self) -> None:
        self.server.stop()


#: name → factory; factories are called at most once per session
TARGETS: dict[str, Callable[[], Target]] = {
    "local": LocalTarget,
    "fastdfs": FastDFSTarget,
}


def selected_targets() -> list[str]:
    wanted = os.environ.get("GATEWAY_TEST_BACKENDS")
    if not wanted:
        return list(TARGETS)
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise ValueError(
            f"unknown GATEWAY_TEST_BACKENDS entries: {unknown}; known: {list(TARGETS)}"
        )
    return names
