"""A gateway whose tus bucket needs a credential, per backend target; a
business service's hook endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.access.hook_server import HookServer
from tests.access.support import access_config
from tests.support.targets import Target
from testservers.gateway import GatewayProcess


@pytest.fixture(scope="module")
def agw(target: Target) -> Iterator[GatewayProcess]:
    with GatewayProcess(access_config(target)) as gw:
        yield gw


@pytest.fixture(scope="module")
def hooks() -> Iterator[HookServer]:
    server = HookServer()
    yield server
    server.close()
