"""The whole-file digest on three instances sharing Redis: each PATCH of an
upload goes to the next instance, so the hash state saved with the offset
moves between them; the digest is checked by whichever instance receives
the last byte, and every instance answers for the result."""

from __future__ import annotations

import os

from tests.digest.helpers import repr_digest
from tests.ietf.helpers import fields
from tests.ietf.raw import request
from tests.scaleout.cluster import Cluster
from tests.tus.helpers import create, head, patch
from testservers.redis import RedisServer

PIECE = 512 * 1024


def _round_robin(cluster: Cluster, data: bytes, declared: str) -> tuple[str, int]:
    gws = cluster.gateways
    upload_id = create(f"{gws[0].url}/files/", len(data), Repr_Digest=declared).rsplit("/", 1)[1]
    status = 0
    for n, offset in enumerate(range(0, len(data), PIECE)):
        url = f"{gws[n % len(gws)].url}/files/{upload_id}"
        status = patch(url, offset, data[offset : offset + PIECE]).status_code
        if status != 204:
            break
    return upload_id, status


def test_hash_state_moves_between_instances(cluster: Cluster, redis_server: RedisServer) -> None:
    redis_server.start()  # a failed test may have left it stopped
    cluster.revive()
    data = os.urandom(5 * PIECE + 123)
    upload_id, status = _round_robin(cluster, data, repr_digest(data))
    assert status == 204
    for gw in cluster.gateways:  # each instance reads the SHA-256 from the shared record
        answer = request("HEAD", f"{gw.url}/files/{upload_id}", fields(8))
        assert answer.headers["repr-digest"] == repr_digest(data), answer.headers

    upload_id, status = _round_robin(cluster, data, repr_digest(b"something else"))
    assert status == 460
    for gw in cluster.gateways:
        assert head(f"{gw.url}/files/{upload_id}").status_code == 460
