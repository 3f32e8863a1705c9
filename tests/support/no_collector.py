"""A gateway with Python's cyclic collector off, and its resident memory:
for tests that check a run of uploads leaves no bytes in reference cycles
(``ARCHITECTURE.md``, §1: the gateway collects rarely)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from testservers.gateway import GatewayProcess

#: what a run of uploads may leave behind (allocator slack, caches warming)
GROWTH_MAX = 48 * 1024 * 1024


@contextmanager
def collector_off(config: dict[str, Any], workdir: Path) -> Iterator[GatewayProcess]:
    site = workdir / "site"
    site.mkdir(parents=True)
    (site / "sitecustomize.py").write_text("import gc\ngc.disable()\n")
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
