"""Fixtures for the S3 quirk tests: the S3 targets of ``tests/support/targets``
(those selected by ``GATEWAY_TEST_BACKENDS``) and a gateway per target."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import gateway_config, get_target
from tests.support.targets import S3Target, selected_targets, smoke_targets
from testservers.gateway import GatewayProcess

S3_TARGETS = [name for name in selected_targets() if name.startswith("s3-")]


def s3_target_for(name: str) -> S3Target:
    if name not in selected_targets():
        pytest.skip(f"{name} is not among GATEWAY_TEST_BACKENDS")
    target = get_target(name)
    assert isinstance(target, S3Target)
    return target


@pytest.fixture(scope="session", params=S3_TARGETS or ["none"])
def s3_target(request: pytest.FixtureRequest) -> S3Target:
    if request.param == "none":
        pytest.skip("no S3 target selected")
    return s3_target_for(str(request.param))


@pytest.fixture(scope="session")
def swift_target() -> S3Target:
    return s3_target_for("s3-swift")


#: the field stores' smoke targets (``tests/support/targets.smoke_targets``)
#: and the S3 targets selected: every S3 store by default
STORES = list(dict.fromkeys([*smoke_targets(), *S3_TARGETS]))


def store_named(name: str) -> S3Target:
    if name == "none":
        pytest.skip("no S3 target selected")
    target = get_target(name)
    assert isinstance(target, S3Target)
    return target


@pytest.fixture(scope="module", params=STORES or ["none"])
def store(request: pytest.FixtureRequest) -> S3Target:
    """An S3 store of ``STORES`` (tests/s3/test_field_stores.py: the probe
    and what follows from it)."""
    return store_named(str(request.param))


class S3Gateway:
    """A gateway on a fresh bucket of an S3 target, with a direct client."""

    def __init__(
        self, target: S3Target, backend: dict[str, Any] | None = None, **overrides: Any
    ) -> None:
        self.target = target
        self.config = gateway_config(target, **overrides)
        self.config["backends"]["default"].update(backend or {})
        self.bucket: str = self.config["backends"]["default"]["bucket"]
        self.process = GatewayProcess(self.config)
        self.s3 = target.client()

    def leftovers(self) -> list[str]:
        return self.target.leftovers(self.bucket)

    def __enter__(self) -> S3Gateway:
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()


@pytest.fixture(scope="module")
def s3_gateway(s3_target: S3Target) -> Iterator[S3Gateway]:
    with S3Gateway(s3_target) as gw:
        yield gw
