"""The client suite runs on local disk and moto by default (each test starts
the CLI several times); ``GATEWAY_TEST_BACKENDS`` picks any targets."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import gateway_config, get_target
from tests.qiniu.harness import qiniu_config
from tests.support.targets import Target, selected_targets
from testservers.gateway import GatewayProcess

SMOKE = ["local", "s3-moto"]


def client_targets() -> list[str]:
    return selected_targets() if os.environ.get("GATEWAY_TEST_BACKENDS") else SMOKE


@pytest.fixture(scope="session", params=client_targets())
def client_target(request: pytest.FixtureRequest) -> Target:
    return get_target(request.param)


@pytest.fixture(scope="session")
def cli_gateway(client_target: Target) -> Iterator[GatewayProcess]:
    """A gateway with tus and the Qiniu API on, per target."""
    with GatewayProcess(qiniu_config(client_target)) as gw:
        yield gw


@pytest.fixture(scope="session")
def local_gateway() -> Iterator[GatewayProcess]:
    with GatewayProcess(gateway_config(get_target("local"))) as gw:
        yield gw
