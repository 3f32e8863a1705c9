"""The v1 ``ctx``: an opaque, HMAC-signed name for "block stream S at offset O".

``<payload>.<signature>``, both unpadded URL-safe base64 (so a ctx never holds
``/`` or ``,``, which separate it in ``bput`` paths and ``mkfile`` bodies).
Nothing about it is kept in memory: any instance sharing the secret can
verify it after a restart until ``expires_at`` (ARCHITECTURE.md §7). A ctx whose
offset is no longer the stream's (stale) is the caller's check, against the
stream's record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.access.codec import b64decode, b64encode

from .errors import INVALID_CTX

_SIG_BYTES = 20


@dataclass(frozen=True)
class BlockContext:
    stream_id: str
    bucket: str
    offset: int
    expires_at: int
    #: SHA-1 of the whole block, carried by the ctx of its last chunk so that
    #: ``mkfile`` needs no state to name the file's qetag
    block_sha1: bytes | None = None


def derive_secret(secrets: Iterable[str], label: str = "qiniu-ctx") -> bytes:
    """A ctx secret every instance with the same key pairs derives alike."""
    material = "\n".join(sorted(secrets)).encode()
    return hmac.new(material, label.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return b64encode(data).rstrip("=")


class CtxSigner:
    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the ctx secret must not be empty")
        self._secret = secret

    def _sign(self, payload: str) -> bytes:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()[:_SIG_BYTES]

    def encode(self, ctx: BlockContext) -> str:
        body: dict[str, str | int] = {
            "s": ctx.stream_id,
            "b": ctx.bucket,
            "o": ctx.offset,
            "e": ctx.expires_at,
        }
        if ctx.block_sha1 is not None:
            body["h"] = _b64(ctx.block_sha1)
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{_b64(self._sign(payload))}"

    def decode(self, token: str, now: float | None = None) -> BlockContext:
        """The context named by ``token``; 701 ``invalid context`` if it is
        malformed, forged or expired."""
        payload, sep, signature = token.strip().partition(".")
        if not sep or not payload or not signature:
            raise INVALID_CTX.error()
        try:
            authentic = hmac.compare_digest(b64decode(signature), self._sign(payload))
        except ValueError as exc:
            raise INVALID_CTX.error() from exc
        if not authentic:
            raise INVALID_CTX.error()
        try:
            data = json.loads(b64decode(payload))
            ctx = BlockContext(
                stream_id=str(data["s"]),
                bucket=str(data["b"]),
                offset=int(data["o"]),
                expires_at=int(data["e"]),
                block_sha1=b64decode(data["h"]) if "h" in data else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise INVALID_CTX.error() from exc
        if (time.time() if now is None else now) >= ctx.expires_at:
            raise INVALID_CTX.error()
        return ctx
