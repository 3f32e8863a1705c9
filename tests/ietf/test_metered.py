"""IETF uploads are metered as such: ``/metrics`` before and after one."""

from __future__ import annotations

import os

from tests.ietf.helpers import append, create
from tests.observability.scrape import delta, scrape, scrape_when
from testservers.gateway import GatewayProcess

P = "upload_gateway_"


def test_an_ietf_upload_moves_the_counters(rules_gateway: GatewayProcess) -> None:
    data = os.urandom(300_000)
    before = scrape(rules_gateway.url)
    url = create(rules_gateway.files_url, 8, data[:100_000], complete=False).headers["location"]
    assert append(url, 8, 100_000, data[100_000:], complete=True).status == 200
    ietf = {"protocol": "ietf"}
    after = scrape_when(
        rules_gateway.url,
        lambda s: delta(before, s, P + "requests_total", method="PATCH", **ietf) >= 1,
    )
    assert delta(before, after, P + "requests_total", method="POST", status="201", **ietf) == 1
    assert delta(before, after, P + "requests_total", method="PATCH", status="200", **ietf) == 1
    assert delta(before, after, P + "bytes_received_total", **ietf) == len(data)
    assert delta(before, after, P + "uploads_created_total", **ietf) == 1
    assert delta(before, after, P + "uploads_finished_total", **ietf) == 1
    assert delta(before, after, P + "requests_total", protocol="tus") == 0
