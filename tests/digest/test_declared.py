"""A creation's ``Repr-Digest`` (tus POST, IETF creation) is kept on the
upload's record; a malformed one is refused before anything is created."""

from __future__ import annotations

import hashlib

import requests

from gateway.digest_fields import DECLARED
from tests.digest.helpers import record_of, repr_digest
from tests.ietf.helpers import create as ietf_create
from tests.tus.helpers import TUS
from tests.tus.helpers import create as tus_create
from testservers.gateway import GatewayProcess

DATA = b"declared digest " * 64


def test_tus_creation_keeps_declared_digests(gateway: GatewayProcess) -> None:
    url = tus_create(
        gateway.files_url, len(DATA), Repr_Digest=repr_digest(DATA, "sha-256", "sha-512")
    )
    declared = record_of(gateway, url).extra[DECLARED]
    assert declared == {
        "sha-256": hashlib.sha256(DATA).hexdigest(),
        "sha-512": hashlib.sha512(DATA).hexdigest(),
    }


def test_tus_deferred_creation_keeps_it_a_partial_ignores_it(gateway: GatewayProcess) -> None:
    digest = repr_digest(DATA)
    deferred = tus_create(gateway.files_url, None, Repr_Digest=digest)
    assert record_of(gateway, deferred).extra[DECLARED] == {
        "sha-256": hashlib.sha256(DATA).hexdigest()
    }
    # clients send their headers with every request: a partial's would be the whole file's
    partial = tus_create(gateway.files_url, len(DATA), Upload_Concat="partial", Repr_Digest=digest)
    assert DECLARED not in record_of(gateway, partial).extra


def test_unknown_algorithms_only_declare_nothing(gateway: GatewayProcess) -> None:
    url = tus_create(gateway.files_url, len(DATA), Repr_Digest="crc32c=:AAAAAA==:")
    assert DECLARED not in record_of(gateway, url).extra


def test_malformed_repr_digest_is_400_and_creates_nothing(gateway: GatewayProcess) -> None:
    for value in ("sha-256=:AAAA:", "sha-256=abc", "sha-256=:!!:"):
        headers = {**TUS, "Upload-Length": "5", "Repr-Digest": value}
        r = requests.post(gateway.files_url, headers=headers, timeout=10)
        assert r.status_code == 400, (value, r.status_code)
        assert "Repr-Digest" in r.text and r.text.count("\n") == 1
        assert "Location" not in r.headers


def test_ietf_creation_keeps_declared_digest(gateway: GatewayProcess) -> None:
    ex = ietf_create(
        gateway.files_url, 6, Upload_Length=str(len(DATA)), Repr_Digest=repr_digest(DATA)
    )
    assert ex.status == 201, ex.status
    record = record_of(gateway, ex.headers["location"])
    assert record.extra[DECLARED] == {"sha-256": hashlib.sha256(DATA).hexdigest()}
    bad = ietf_create(gateway.files_url, 6, Upload_Length="5", Repr_Digest="sha-256=:AAAA:")
    assert bad.status == 400
