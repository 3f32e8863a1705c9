"""Fixtures of the hostile-input suite: gateways with both protocols on (tus
at ``/files/``, the Qiniu API with the test keys).

* ``hgw`` — one per backend target: what depends on the store (keys, URLs,
  stored content types) runs on every selected target;
* ``pgw`` — one gateway on a single target (``local`` when selected): the
  HTTP parsing classes do not depend on the store, so CI runs them once;
* ``fuzz_target`` — ``local`` and ``s3-moto`` (those of them selected, else
  the first selected target): the fuzz suite's stores.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import get_target
from tests.qiniu.harness import qiniu_config
from tests.support.targets import Target, selected_targets
from testservers.gateway import GatewayProcess

FUZZ_TARGETS = ("local", "s3-moto")


def parsing_target() -> str:
    selected = selected_targets()
    return "local" if "local" in selected else selected[0]


def fuzz_targets() -> list[str]:
    selected = selected_targets()
    return [t for t in FUZZ_TARGETS if t in selected] or selected[:1]


@pytest.fixture(scope="session")
def hgw(target: Target) -> Iterator[GatewayProcess]:
    with GatewayProcess(qiniu_config(target)) as gw:
        yield gw


@pytest.fixture(scope="session")
def pgw() -> Iterator[GatewayProcess]:
    with GatewayProcess(qiniu_config(get_target(parsing_target()))) as gw:
        yield gw


@pytest.fixture(scope="session", params=fuzz_targets())
def fuzz_target(request: pytest.FixtureRequest) -> Target:
    return get_target(request.param)
