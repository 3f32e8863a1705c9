"""IETF resumable uploads: ``Repr-Digest`` on the creation or on any append
declares the whole upload's digest, verified when its last byte arrives
however many requests carried the bytes; the finished upload answers with
the SHA-256 the gateway computed."""

from __future__ import annotations

import hashlib
import os

import requests

from gateway.core.digests import SHA256
from tests.digest.helpers import record_of, repr_digest
from tests.ietf.helpers import append, create, fields
from tests.ietf.raw import request
from testservers.gateway import GatewayProcess

DATA = os.urandom(200_000)
THIRDS = [DATA[:70_000], DATA[70_000:140_000], DATA[140_000:]]
V = 8


def _upload(
    gw: GatewayProcess, creation: dict[str, str], appends: list[dict[str, str]]
) -> tuple[str, int]:
    ex = create(gw.files_url, V, THIRDS[0], complete=False, **creation)
    assert ex.status == 201, ex.status
    url = ex.headers["location"]
    offset = len(THIRDS[0])
    status = 0
    for i, (piece, extra) in enumerate(zip(THIRDS[1:], appends, strict=True)):
        ex = append(url, V, offset, piece, complete=i == 1, **extra)
        status = ex.status
        if status >= 400:
            break
        offset += len(piece)
    return url, status


def test_digest_declared_at_creation_is_verified_after_several_appends(
    gateway: GatewayProcess,
) -> None:
    url, status = _upload(gateway, {"Repr_Digest": repr_digest(DATA)}, [{}, {}])
    assert status < 300
    assert record_of(gateway, url).extra[SHA256] == hashlib.sha256(DATA).hexdigest()
    head = request("HEAD", url, fields(V))
    assert head.headers["repr-digest"] == repr_digest(DATA)
    assert requests.get(url, timeout=30).content == DATA


def test_digest_declared_on_an_append(gateway: GatewayProcess) -> None:
    url, status = _upload(gateway, {}, [{}, {"Repr_Digest": repr_digest(DATA, "sha-256")}])
    assert status < 300
    wrong = repr_digest(b"not this")
    url, status = _upload(gateway, {}, [{"Repr_Digest": wrong}, {}])
    assert status == 400
    assert request("HEAD", url, fields(V)).status == 400  # refused: nothing committed
    assert (
        requests.get(
            f"{gateway.url}/objects/default/{url.rsplit('/', 1)[1]}", timeout=30
        ).status_code
        == 404
    )


def test_a_contradicting_digest_is_refused_and_the_upload_goes_on(gateway: GatewayProcess) -> None:
    ex = create(gateway.files_url, V, THIRDS[0], complete=False, Repr_Digest=repr_digest(DATA))
    url = ex.headers["location"]
    ex = append(url, V, len(THIRDS[0]), THIRDS[1], complete=False, Repr_Digest=repr_digest(b"x"))
    assert ex.status == 400
    offset = len(THIRDS[0])
    for i, piece in enumerate(THIRDS[1:]):
        ex = append(url, V, offset, piece, complete=i == 1)
        assert ex.status < 300, ex.status
        offset += len(piece)
    assert record_of(gateway, url).extra[SHA256] == hashlib.sha256(DATA).hexdigest()
