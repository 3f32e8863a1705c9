"""The one place protocols and object reads ask "may this request do that?".

Built once per app from the config (``AccessGate.from_config``): the key
pairs that sign upload tokens and download URLs, the JWT verifier, and each
bucket's rules (anonymous uploads, private reads).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from ipaddress import ip_address
from typing import Any

from aiohttp import web
from jwt import PyJWTError

from gateway.config import ConfigError, GatewayConfig
from gateway.core.errors import ServiceUnavailable
from gateway.core.events import event_payload
from gateway.core.records import UploadRecord

from .credentials import NO_CREDENTIAL, Credentials, Grant
from .errors import KEY_SCOPE
from .hooks import RETRY_AFTER, Changes, SyncHooks
from .jwt_tokens import JwtVerifier
from .ownership import OWNER_FIELD, admits
from .signed_urls import sign_url, verify_url
from .tokens import KeyPair, TokenVerifier

log = logging.getLogger(__name__)

#: approvals remembered for ``pre_create_once`` (per instance, least recent dropped)
_APPROVALS = 4096
#: and for how long at most (a token's deadline may end it sooner)
_APPROVAL_TTL = 3600.0


class AccessGate:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.pairs = [KeyPair(k.access_key, k.secret_key) for k in config.qiniu.keys]
        self.tokens = TokenVerifier(self.pairs)
        try:
            jwt = JwtVerifier(config.access.jwt) if config.access.jwt is not None else None
        except (OSError, ValueError, PyJWTError) as exc:
            raise ConfigError(f"access.jwt: cannot read its key: {exc}") from exc
        self.credentials = Credentials(self.tokens, jwt)
        self.hooks = SyncHooks(config.hooks)
        #: token digest -> (until, changes) of approved pre-creates
        self._approved: OrderedDict[bytes, tuple[float, Changes]] = OrderedDict()

    # -- uploads -------------------------------------------------------------
    def grant(self, request: web.Request) -> Grant | None:
        """The request's credential, checked (401 if bad or expired)."""
        return self.credentials.grant(request.headers.get("Authorization"))

    def grant_to_upload(self, request: web.Request, bucket: str) -> Grant | None:
        """The grant for a new upload into ``bucket``: 401 without one where
        the bucket takes no anonymous uploads, 403 for another bucket's."""
        grant = self.grant(request)
        if grant is None:
            if not self.config.buckets[bucket].anonymous_upload:
                raise NO_CREDENTIAL.error()
            return None
        if grant.policy.bucket != bucket:
            raise KEY_SCOPE.error("the token's scope is another bucket")
        return grant

    def admits(self, grant: Grant | None, record: UploadRecord) -> bool:
        """Whether ``grant`` may act on ``record`` (callers answer 404 if not)."""
        if grant is None and OWNER_FIELD not in record.extra:
            # made anonymously: reachable by its URL while the bucket allows it
            bucket = self.config.buckets.get(record.bucket)
            return bucket is not None and bucket.anonymous_upload
        return admits(grant, record)

    # -- hooks ---------------------------------------------------------------
    async def pre_create(self, payload: dict[str, Any]) -> Changes:
        """Ask the pre-create hooks (payload as the webhooks': protocol,
        bucket, key, size, metadata, endUser); their changes, validated."""
        if not self.hooks.configured("pre-create"):
            return Changes()
        changes = await self.hooks.call("pre-create", payload)
        if changes.bucket is not None and changes.bucket not in self.config.buckets:
            log.error("pre-create hook named no configured bucket: %r", changes.bucket)
            raise ServiceUnavailable("an upload hook is unavailable; retry later", RETRY_AFTER)
        return changes

    async def pre_create_once(self, token: str, deadline: int, payload: dict[str, Any]) -> Changes:
        """``pre_create`` for an upload of many requests that each carry the
        same credential and none names the upload (Qiniu v1 blocks): asked at
        the first, its approval remembered for the others on this instance
        (until the credential's ``deadline``, an hour at most). A refusal
        or a hook down is not remembered."""
        if not self.hooks.configured("pre-create"):
            return Changes()
        digest = hashlib.sha256(token.encode()).digest()
        now = time.time()
        known = self._approved.get(digest)
        if known is not None and known[0] > now:
            self._approved.move_to_end(digest)
            return known[1]
        changes = await self.pre_create(payload)
        until = now + _APPROVAL_TTL
        self._approved[digest] = (min(until, deadline) if deadline else until, changes)
        self._approved.move_to_end(digest)
        while len(self._approved) > _APPROVALS:
            self._approved.popitem(last=False)
        return changes

    async def pre_finish(self, record: UploadRecord, bucket: str, key: str) -> None:
        """The core's approver (``Ledger.approve``): the pre-finish hooks."""
        payload = event_payload("pre-finish", record)
        payload.update(bucket=bucket, key=key, size=record.offset or record.length)
        payload.pop("event")
        payload["endUser"] = (record.extra.get(OWNER_FIELD) or {}).get("endUser")
        await self.hooks.call("pre-finish", payload)

    # -- reads ---------------------------------------------------------------
    def is_private(self, bucket: str) -> bool:
        b = self.config.buckets.get(bucket)
        return b is not None and b.private

    def check_signed(self, url: str) -> None:
        """401 unless ``url`` is a valid private-download URL."""
        verify_url(url, self.tokens.pair)

    def sign(self, url: str) -> str:
        """``url`` signed with the first key pair for ``uploads.url_ttl``."""
        return sign_url(url, self.pairs[0], self.config.uploads.url_ttl, time.time())

    # -- start-up ------------------------------------------------------------
    def warn_if_open(self) -> None:
        """A loud warning when a non-loopback address serves a bucket that
        takes anonymous uploads."""
        host = self.config.server.host
        try:
            loopback = host == "localhost" or ip_address(host).is_loopback
        except ValueError:
            loopback = False
        for hook in self.config.hooks:
            if not hook.secret:
                log.warning(
                    "hook %s has no secret: its calls are not signed (hooks[].secret)", hook.url
                )
        if loopback or not self.config.tus.enabled:
            return
        bucket = self.config.tus.bucket
        if self.config.buckets[bucket].anonymous_upload:
            log.warning(
                "SECURITY: %s is reachable beyond this machine and bucket %r takes "
                "anonymous tus uploads: anyone who reaches it can upload. Set "
                "buckets.%s.anonymous_upload: false and hand out upload tokens or JWTs "
                "(README, Access control).",
                host,
                bucket,
                bucket,
            )


GATE = web.AppKey("access_gate", AccessGate)
