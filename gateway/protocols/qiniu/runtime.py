"""What the Qiniu handlers share within one gateway process: token
verification, the ctx signer, the callback HTTP client and the cache of
running block hashers.

Nothing here is needed by another instance: a ctx is self-describing and a
lost hasher is rebuilt from the stored bytes (``blocks.py``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from gateway.access.qetag import BlockHasher
from gateway.access.tokens import KeyPair, TokenVerifier, UploadToken, token_from_authorization
from gateway.app_keys import CONFIG, SERVICE
from gateway.config import GatewayConfig
from gateway.core import UploadService
from gateway.urls import base_url

from .ctx import CtxSigner, derive_secret
from .errors import NO_SUCH_BUCKET

_HASHER_CACHE = 4096


class HasherCache:
    """Running SHA-1s of v1 blocks being written here, by stream id (LRU)."""

    def __init__(self, size: int = _HASHER_CACHE) -> None:
        self._size = size
        self._items: OrderedDict[str, BlockHasher] = OrderedDict()

    def get(self, stream_id: str, offset: int) -> BlockHasher | None:
        """A copy of the hasher of ``stream_id`` if it has seen ``offset`` bytes."""
        hasher = self._items.get(stream_id)
        if hasher is None or hasher.size != offset:
            return None
        self._items.move_to_end(stream_id)
        return hasher.copy()

    def put(self, stream_id: str, hasher: BlockHasher) -> None:
        self._items[stream_id] = hasher
        self._items.move_to_end(stream_id)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, stream_id: str) -> None:
        self._items.pop(stream_id, None)


@dataclass
class QiniuRuntime:
    config: GatewayConfig
    verifier: TokenVerifier
    signer: CtxSigner
    hashers: HasherCache = field(default_factory=HasherCache)
    session: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(cls, config: GatewayConfig) -> QiniuRuntime:
        pairs = [KeyPair(k.access_key, k.secret_key) for k in config.qiniu.keys]
        secret = (
            config.qiniu.ctx_secret.encode()
            if config.qiniu.ctx_secret
            else derive_secret(p.secret_key for p in pairs)
        )
        return cls(config, TokenVerifier(pairs), CtxSigner(secret))

    @property
    def context_ttl(self) -> float:
        """How long a ctx / uploadId is promised: never past the upload's own
        expiry, so the stored bytes outlive every promise made about them."""
        return min(self.config.qiniu.context_ttl, self.config.uploads.expire_after)

    def expiry(self, record_expires_at: float | None = None) -> int:
        limit = time.time() + self.context_ttl
        if record_expires_at is not None:
            limit = min(limit, record_expires_at)
        return int(limit)

    def verify_header(self, request: web.Request) -> UploadToken:
        """The request's token, authentic and before its deadline (401 else):
        checked on every request that uses it, not only when a file is made."""
        return self.verify(token_from_authorization(request.headers.get("Authorization")))

    def verify(self, token: str | None) -> UploadToken:
        verified = self.verifier.verify(token)
        verified.policy.check_deadline()
        return verified

    def staging_bucket(self) -> str:
        return self.config.qiniu.staging_bucket or next(iter(self.config.buckets))

    def http(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        return self.session


RUNTIME = web.AppKey("qiniu", QiniuRuntime)


@dataclass
class Call:
    """One request with what its handler needs."""

    request: web.Request
    runtime: QiniuRuntime
    service: UploadService

    @classmethod
    def of(cls, request: web.Request) -> Call:
        return cls(request, request.app[RUNTIME], request.app[SERVICE])

    @property
    def config(self) -> GatewayConfig:
        return self.request.app[CONFIG]

    @property
    def base_url(self) -> str:
        return base_url(self.request, self.config.server)

    def check_bucket(self, name: str) -> str:
        """631 ``no such bucket`` unless ``name`` is a configured bucket."""
        if not self.service.has_bucket(name):
            raise NO_SUCH_BUCKET.error()
        return name


async def runtime_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: close the callback HTTP client with the app."""
    yield
    runtime = app[RUNTIME]
    if runtime.session is not None:
        await runtime.session.close()
