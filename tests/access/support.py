"""Credentials for the access tests: upload tokens minted with the gateway's
own ``mint`` (checked against the qiniu SDK in tests/qiniu) and JWTs."""

from __future__ import annotations

import time
from typing import Any

import jwt
import requests

from gateway.access.tokens import KeyPair, make_policy, mint
from tests.conftest import gateway_config
from tests.support.targets import Target
from tests.tus.helpers import TUS

AK, SK = "access-test-ak", "access-test-sk"
PAIR = KeyPair(AK, SK)
JWT_SECRET = "access-test-jwt-secret-0123456789abcdef"


def access_config(target: Target, **overrides: Any) -> dict[str, Any]:
    """A gateway whose tus bucket takes no anonymous uploads, with a key pair
    and HS256 JWTs configured."""
    config = gateway_config(
        target,
        buckets={
            "default": {"backend": "default", "anonymous_upload": False},
            "other": {"backend": "default", "prefix": "other/"},
        },
        qiniu={"enabled": True, "keys": [{"access_key": AK, "secret_key": SK}]},
        access={"jwt": {"algorithms": ["HS256"], "secret": JWT_SECRET}},
    )
    config.update(overrides)
    return config


def uptoken(
    bucket: str = "default", key: str | None = None, expires: float = 3600, **extra: Any
) -> str:
    return mint(PAIR, make_policy(bucket, key, expires, extra))


def bearer(policy: dict[str, Any], sub: str | None = None, expires: float = 3600) -> str:
    claims: dict[str, Any] = {"exp": int(time.time() + expires), "policy": policy}
    if sub is not None:
        claims["sub"] = sub
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def auth(token: str) -> dict[str, str]:
    scheme = "UpToken" if token.count(":") == 2 else "Bearer"
    return {"Authorization": f"{scheme} {token}"}


def tus_create(
    files_url: str, length: int, token: str | None, metadata: str | None = None
) -> requests.Response:
    headers = {**TUS, "Upload-Length": str(length)}
    if token:
        headers.update(auth(token))
    if metadata:
        headers["Upload-Metadata"] = metadata
    return requests.post(files_url, headers=headers, timeout=30)
