"""Key pairs and the HMAC-SHA1 signature Qiniu's credentials are made of
(upload tokens, private-download URLs). Imports nothing of the gateway
beyond base64, so the core may sign URLs without loading put policies."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from .codec import b64encode


@dataclass(frozen=True)
class KeyPair:
    access_key: str
    secret_key: str


def sign(secret_key: str | bytes, data: str | bytes) -> str:
    """URL-safe base64 (padded) of HMAC-SHA1(secret_key, data)."""
    key = secret_key.encode() if isinstance(secret_key, str) else secret_key
    msg = data.encode() if isinstance(data, str) else data
    return b64encode(hmac.new(key, msg, hashlib.sha1).digest())
