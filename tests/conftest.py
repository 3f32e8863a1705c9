"""Shared fixtures: backends under test and gateways over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.access.hook_server import HookServer
from tests.support.targets import TARGETS, Target, selected_targets
from testservers.gateway import GatewayProcess

_started: dict[str, Target] = {}


def get_target(name: str) -> Target:
    if name not in _started:
        _started[name] = TARGETS[name]()
    return _started[name]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for target in _started.values():
        target.stop()


@pytest.fixture(scope="session", params=selected_targets())
def target(request: pytest.FixtureRequest) -> Target:
    return get_target(request.param)


def gateway_config(target: Target, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "backends": {"default": target.backend_config()},
        "buckets": {"default": {"backend": "default"}},
        "uploads": {"sweep_interval": 1},
    }
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(config.get(section), dict):
            config[section] = {**config[section], **values}
        else:
            config[section] = values
    return config


@pytest.fixture(scope="session")
def gateway(target: Target) -> Iterator[GatewayProcess]:
    """One gateway per backend target, shared by the tests that need no special config."""
    with GatewayProcess(gateway_config(target)) as gw:
        yield gw


@pytest.fixture(scope="module")
def hooks() -> Iterator[HookServer]:
    """A business service's hook endpoint (``tests/access/hook_server.py``)."""
    server = HookServer()
    yield server
    server.close()
