"""Fixtures of the observability suite: a gateway per backend target with
tus and Qiniu on, logging JSON lines to a file the tests read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.qiniu.harness import qiniu_config
from tests.support.targets import Target
from testservers.gateway import GatewayProcess


class JsonLogGateway(GatewayProcess):
    extra_args = ("--log-format", "json")

    def log_lines(self) -> list[dict[str, Any]]:
        """Every JSON line of the log so far (the non-JSON lines are aiohttp's banner)."""
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


@pytest.fixture(scope="module")
def ogw(target: Target) -> Iterator[JsonLogGateway]:
    with JsonLogGateway(qiniu_config(target)) as gw:
        yield gw
