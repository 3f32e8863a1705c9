"""Upload tokens: ``AccessKey:urlsafe_b64(hmac_sha1(SK, encodedPolicy)):encodedPolicy``.

The HMAC is checked over the encoded policy *exactly as received* — never a
re-serialisation, since SDKs order JSON keys differently. ``mint`` makes
tokens for the CLI and tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .codec import b64decode, b64encode
from .errors import BAD_TOKEN
from .keys import KeyPair, sign
from .policy import PutPolicy

__all__ = ["KeyPair", "TokenVerifier", "UploadToken", "make_policy", "mint", "sign"]


def mint(pair: KeyPair, policy: Mapping[str, Any]) -> str:
    """An upload token for ``policy`` (compact JSON, keys in given order)."""
    encoded = b64encode(json.dumps(dict(policy), separators=(",", ":")))
    return f"{pair.access_key}:{sign(pair.secret_key, encoded)}:{encoded}"


def make_policy(
    bucket: str,
    key: str | None = None,
    expires: float = 3600,
    extra: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The policy dict the SDKs build: ``scope``, ``deadline``, then extras."""
    policy: dict[str, Any] = {
        "scope": bucket if key is None else f"{bucket}:{key}",
        "deadline": int((time.time() if now is None else now) + expires),
    }
    policy.update(extra or {})
    return policy


@dataclass(frozen=True)
class UploadToken:
    """A verified token: who signed it and what it allows."""

    access_key: str
    policy: PutPolicy
    raw: str


class TokenVerifier:
    """Checks tokens against the configured key pairs."""

    def __init__(self, pairs: Iterable[KeyPair]) -> None:
        self._secrets = {p.access_key: p.secret_key for p in pairs}

    def pair(self, access_key: str) -> KeyPair | None:
        secret = self._secrets.get(access_key)
        return None if secret is None else KeyPair(access_key, secret)

    def verify(self, token: str | None) -> UploadToken:
        """Parse and authenticate ``token``; 401 ``bad token`` on any fault.
        The deadline is not checked here (``PutPolicy.check_deadline``)."""
        if not token:
            raise BAD_TOKEN.error()
        parts = token.strip().split(":")
        if len(parts) != 3 or not all(parts):
            raise BAD_TOKEN.error()
        access_key, signature, encoded = parts
        secret = self._secrets.get(access_key)
        if secret is None:
            raise BAD_TOKEN.error()
        try:
            given = b64decode(signature)
            expected = hmac.new(secret.encode(), encoded.encode(), hashlib.sha1).digest()
        except (ValueError, UnicodeEncodeError) as exc:
            raise BAD_TOKEN.error() from exc
        if not hmac.compare_digest(given, expected):
            raise BAD_TOKEN.error()
        try:
            data = json.loads(b64decode(encoded).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BAD_TOKEN.error() from exc
        return UploadToken(access_key, PutPolicy.parse(data), token.strip())


def token_from_authorization(header: str | None) -> str | None:
    """The token of an ``Authorization: UpToken <token>`` header."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "uptoken" or not value.strip():
        return None
    return value.strip()
