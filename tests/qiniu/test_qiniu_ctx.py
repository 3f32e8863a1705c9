from __future__ import annotations

import time

import pytest

from gateway.protocols.qiniu.ctx import BlockContext, CtxSigner, derive_secret
from gateway.protocols.qiniu.errors import QiniuError

SIGNER = CtxSigner(derive_secret(["sk1", "sk2"]))


def _ctx(expires: float = 3600) -> BlockContext:
    return BlockContext("stream-1", "bkt", 4096, int(time.time() + expires))


def test_round_trip_and_another_instance() -> None:
    token = SIGNER.encode(_ctx())
    assert "/" not in token and "," not in token and "=" not in token
    other = CtxSigner(derive_secret(["sk2", "sk1"]))  # same keys, any order
    assert other.decode(token) == SIGNER.decode(token)


def _invalid(signer: CtxSigner, token: str) -> None:
    with pytest.raises(QiniuError) as info:
        signer.decode(token)
    assert (info.value.status, info.value.message) == (701, "invalid context")


def test_tampered_expired_foreign() -> None:
    token = SIGNER.encode(_ctx())
    payload, sig = token.split(".")
    _invalid(SIGNER, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + sig)
    _invalid(SIGNER, payload + "." + sig[::-1])
    _invalid(SIGNER, SIGNER.encode(_ctx(-1)))
    _invalid(CtxSigner(b"another secret"), token)
    for junk in ["", ".", "abc", "abc.", ".abc", "a.b.c", "%%%.%%%"]:
        _invalid(SIGNER, junk)


def test_block_sha1_round_trip() -> None:
    ctx = BlockContext("s", "b", 10, int(time.time() + 60), b"\x01" * 20)
    assert SIGNER.decode(SIGNER.encode(ctx)) == ctx
