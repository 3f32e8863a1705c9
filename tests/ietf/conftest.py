"""A local-disk gateway with a size limit, for the protocol's rules (the
core under them is the same for every store; tests/ietf/test_every_backend.py
and test_tus_js_client_ietf.py run the uploads themselves on every target)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import gateway_config
from tests.support.targets import LocalTarget
from testservers.gateway import GatewayProcess

MAX_SIZE = 10_000_000


def local_gateway(**server: object) -> Iterator[GatewayProcess]:
    """A gateway on a fresh local disk with these ``server`` settings."""
    with GatewayProcess(gateway_config(LocalTarget(), server=server)) as gw:
        yield gw


@pytest.fixture(scope="module")
def rules_gateway() -> Iterator[GatewayProcess]:
    yield from local_gateway(max_upload_size=MAX_SIZE)
