from __future__ import annotations

import json
import time

import pytest
import qiniu

from gateway.access.codec import b64decode, b64encode
from gateway.access.tokens import (
    KeyPair,
    TokenVerifier,
    make_policy,
    mint,
    sign,
    token_from_authorization,
)
from gateway.protocols.qiniu.errors import QiniuError

PAIR = KeyPair("AK", "SK-secret")
VERIFIER = TokenVerifier([PAIR, KeyPair("AK2", "other")])


def test_doc_vector() -> None:
    policy = (
        '{"scope":"my-bucket:sunflower.jpg","deadline":1451491200,"returnBody":'
        '"{\\"name\\":$(fname),\\"size\\":$(fsize),\\"w\\":$(imageInfo.width),'
        '\\"h\\":$(imageInfo.height),\\"hash\\":$(etag)}"}'
    )
    assert sign("MY_SECRET_KEY", b64encode(policy)) == "wQ4ofysef1R7IKnrziqtomqyDvI="


def test_sdk_token_verifies() -> None:
    auth = qiniu.Auth(PAIR.access_key, PAIR.secret_key)
    token = auth.upload_token(
        "bkt", "a/b.txt", 600, {"returnBody": '{"k":$(key)}', "insertOnly": 1}
    )
    verified = VERIFIER.verify(token)
    assert verified.access_key == "AK"
    assert verified.policy.bucket == "bkt"
    assert verified.policy.scope_key == "a/b.txt"
    assert verified.policy.insert_only
    assert verified.policy.return_body == '{"k":$(key)}'


def test_minted_token_matches_sdk_decoding() -> None:
    token = mint(PAIR, make_policy("bkt", None, 60, {"fsizeLimit": 10}))
    ak, _sig, policy = qiniu.Auth.up_token_decode(token)
    assert ak == "AK" and policy["scope"] == "bkt" and policy["fsizeLimit"] == 10
    assert VERIFIER.verify(token).policy.fsize_limit == 10


def test_hmac_over_policy_as_received() -> None:
    # key order and spacing differ from what we would serialise
    encoded = b64encode('{ "deadline": 99999999999, "scope" : "bkt", "unknownField": [1] }')
    token = f"AK:{sign(PAIR.secret_key, encoded)}:{encoded}"
    assert VERIFIER.verify(token).policy.bucket == "bkt"
    unpadded = encoded.rstrip("=")
    if unpadded != encoded:
        # a different byte string: its HMAC differs, so it must be signed as sent
        token2 = f"AK:{sign(PAIR.secret_key, unpadded)}:{unpadded}"
        assert VERIFIER.verify(token2).policy.bucket == "bkt"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "AK:sig",
        "nokey:" + sign("SK-secret", "e30=") + ":e30=",
        "AK:" + sign("wrong", "e30=") + ":e30=",
        "AK:" + sign("SK-secret", "e30=") + ":e30=",  # {} has no scope
        "AK:!!!:e30=",
    ],
)
def test_bad_tokens(token: str) -> None:
    with pytest.raises(QiniuError) as info:
        VERIFIER.verify(token)
    assert (info.value.status, info.value.message) == (401, "bad token")


def test_tampered_policy() -> None:
    token = mint(PAIR, make_policy("bkt"))
    ak, sig, _enc = token.split(":")
    forged = b64encode(json.dumps({"scope": "other", "deadline": 2**40}))
    with pytest.raises(QiniuError):
        VERIFIER.verify(f"{ak}:{sig}:{forged}")


def test_deadline_checked_separately() -> None:
    token = mint(PAIR, make_policy("bkt", expires=-10))
    policy = VERIFIER.verify(token).policy
    with pytest.raises(QiniuError) as info:
        policy.check_deadline()
    assert (info.value.status, info.value.message) == (401, "expired token")
    policy.check_deadline(now=time.time() - 3600)


def test_authorization_header() -> None:
    assert token_from_authorization("UpToken a:b:c") == "a:b:c"
    assert token_from_authorization("uptoken  a:b:c ") == "a:b:c"
    assert token_from_authorization("QBox a:b") is None
    assert token_from_authorization(None) is None


def test_b64_padding_optional() -> None:
    assert b64decode("YQ==") == b"a" == b64decode("YQ")
    assert b64decode(b64encode(b"\xfb\xff")) == b"\xfb\xff"
    with pytest.raises(ValueError):
        b64decode("a$b")
