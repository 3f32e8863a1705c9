"""A gateway with Python's cyclic collector off, its resident memory, and
what a collection in it would find unreachable: for tests that check a run of
uploads leaves nothing in reference cycles (``ARCHITECTURE.md``, §1: the
gateway collects rarely)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from testservers.gateway import GatewayProcess

#: in the gateway: the collector off; on SIGUSR2, ``tests.support.cycles.unreachable()``
#: written to a file
_SITE = """import gc, json, os, signal
gc.disable()

def _dump(*_):
    from tests.support.cycles import unreachable
    with open({out!r} + ".tmp", "w") as f:
        json.dump(unreachable(), f)
    os.replace({out!r} + ".tmp", {out!r})

signal.signal(signal.SIGUSR2, _dump)
"""

#: what a run of uploads may leave behind (allocator slack, caches warming)
_GROWTH_MAX = 48 * 1024 * 1024


@contextmanager
def collector_off(config: dict[str, Any], workdir: Path) -> Iterator[GatewayProcess]:
    site = workdir / "site"
    site.mkdir(parents=True)
    (site / "sitecustomize.py").write_text(_SITE.format(out=str(workdir / "unreachable.json")))
    gw = GatewayProcess(config, workdir=workdir / "gw")
    gw.extra_path = (str(site),)
    with gw:
        yield gw


def rss(pid: int) -> int:
    """The process's resident memory, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def unreachable_in(gw: GatewayProcess) -> list[str]:
    """What a collection in ``gw`` (started by ``collector_off``) finds
    unreachable that is the gateway's, named."""
    out = gw.workdir.parent / "unreachable.json"
    out.unlink(missing_ok=True)
    os.kill(gw.pid, signal.SIGUSR2)
    deadline = time.monotonic() + 30
    while not out.exists():
        assert time.monotonic() < deadline, "the gateway wrote no list of what is unreachable"
        time.sleep(0.05)
    found: list[str] = json.loads(out.read_text())
    return found


def assert_uploads_leave_nothing(
    gw: GatewayProcess, upload: Callable[[], None], uploads: int, what: str
) -> None:
    """``upload()`` twice (caches and pools warm up), then ``uploads`` times
    more: nothing of the gateway's is then unreachable, and its RSS grew less
    than ``_GROWTH_MAX``; ``what`` names one upload in the message."""
    for _ in range(2):
        upload()
    before = rss(gw.pid)
    for _ in range(uploads):
        upload()
    grown = rss(gw.pid) - before
    found = unreachable_in(gw)
    assert not found, f"left in reference cycles: {found}"
    assert grown < _GROWTH_MAX, (
        f"{uploads} {what} left the gateway {grown >> 20} MiB larger with the cyclic collector off"
    )
