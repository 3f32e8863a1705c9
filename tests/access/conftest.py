"""A gateway whose tus bucket needs a credential, per backend target (the
hook endpoint, ``hooks``, is the root conftest's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.access.support import access_config
from tests.support.targets import Target
from testservers.gateway import GatewayProcess


@pytest.fixture(scope="module")
def agw(target: Target) -> Iterator[GatewayProcess]:
    with GatewayProcess(access_config(target)) as gw:
        yield gw
