"""The instant-upload suites run on local disk and moto by default (each
module starts gateways of its own); ``GATEWAY_TEST_BACKENDS`` picks any
targets (local, s3-moto, swift, fastdfs: the whole matrix)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import get_target
from tests.support.targets import Target, selected_targets

SMOKE = ["local", "s3-moto"]


def instant_targets() -> list[str]:
    return selected_targets() if os.environ.get("GATEWAY_TEST_BACKENDS") else SMOKE


@pytest.fixture(scope="session", params=instant_targets())
def target(request: pytest.FixtureRequest) -> Target:
    return get_target(request.param)
