"""Fixtures of the Swift backend's own tests: the ``swift`` target's server
(shared with the conformance and protocol suites) and ways to reach it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import get_target
from tests.support.targets import SwiftTarget, selected_targets
from tests.swift.account import SwiftAccount


@pytest.fixture(scope="session")
def swift_target() -> SwiftTarget:
    if "swift" not in selected_targets():
        pytest.skip("the swift target is not selected (GATEWAY_TEST_BACKENDS)")
    target = get_target("swift")
    assert isinstance(target, SwiftTarget)
    return target


@pytest.fixture(scope="session")
def account(swift_target: SwiftTarget) -> SwiftAccount:
    return swift_target.account


@pytest.fixture
def swift_config(swift_target: SwiftTarget) -> dict[str, Any]:
    """A backend mapping with fresh containers (``container`` / ``<container>_segments``)."""
    return swift_target.backend_config()
