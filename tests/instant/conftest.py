"""The instant-upload suites run on local disk and moto by default (each
module starts gateways of its own), as the client suite does;
``GATEWAY_TEST_BACKENDS`` picks any targets (the whole matrix)."""

from __future__ import annotations

import pytest

from tests.client.conftest import client_targets
from tests.conftest import get_target
from tests.support.targets import Target


@pytest.fixture(scope="session", params=client_targets())
def target(request: pytest.FixtureRequest) -> Target:
    return get_target(request.param)
