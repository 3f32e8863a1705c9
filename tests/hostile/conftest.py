"""Fixtures of the hostile-input suite: one gateway per backend target with
both protocols on (tus at ``/files/``, the Qiniu API with the test keys)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.qiniu.harness import qiniu_config
from tests.support.targets import Target
from testservers.gateway import GatewayProcess


@pytest.fixture(scope="session")
def hgw(target: Target) -> Iterator[GatewayProcess]:
    with GatewayProcess(qiniu_config(target)) as gw:
        yield gw
