"""IETF resumable uploads on three instances sharing Redis and one store:
tus-js-client's requests spread over the instances at random, and a creation
cut off on one instance resumed on another from the URL its 104 carried."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from tests.ietf.helpers import append, fields, offset_of, says_complete, wait_offset
from tests.ietf.raw import request
from tests.scaleout.clients import fetch, sha
from tests.scaleout.cluster import Cluster
from tests.tus.test_tus_js_client import run_tus_js

MiB = 1024 * 1024


@pytest.mark.parametrize("protocol", ["ietf-draft-03", "ietf-draft-05"])
def test_tus_js_client_through_random_instances(
    cluster: Cluster, tmp_path: Path, protocol: str
) -> None:
    assert cluster.proxy is not None
    cluster.proxy.hits.clear()
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(3 * MiB + 7))
    url = run_tus_js(cluster.files_url, source, {"protocol": protocol, "chunkSize": 512 * 1024})
    assert sha(fetch(url)) == sha(source.read_bytes())
    statuses = Counter(h.status for h in cluster.proxy.hits)
    assert set(statuses) <= {200, 201, 204}, statuses
    assert len({h.instance for h in cluster.proxy.hits}) > 1  # several instances took part


def test_creation_cut_on_one_instance_resumed_on_another(cluster: Cluster) -> None:
    first, second = cluster.gateways[0], cluster.gateways[1]
    data = os.urandom(2 * MiB + 3)
    sent = MiB + 1
    ex = request("POST", first.files_url, fields(8, True), data, send_only=sent, await_interim=True)
    assert [m.status for m in ex.interim] == [104]
    path = ex.interim[0].headers["location"].split("/files/", 1)[1]
    url = f"{second.files_url}{path}"
    assert wait_offset(url, sent) == sent  # every byte the first instance received
    assert offset_of(url, 8) == sent
    r = append(url, 8, sent, data[sent:], complete=True)
    assert r.status == 200
    assert says_complete(8, r.headers)
    assert sha(fetch(url)) == sha(data)
