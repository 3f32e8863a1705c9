"""Synchronous hooks: the business service decides.

``pre-create`` is called before any state exists and ``pre-finish`` before an
upload becomes an object (``Ledger.approve_commit``), each as an HTTP POST of
JSON shaped like the async webhooks, signed like them (``signing.py``):

* 2xx: go on. A ``pre-create`` answer may carry changes as JSON:
  ``{"key": ..., "bucket": ..., "metadata": {...}, "sizeLimit": N}``.
* 4xx: refused; the client gets that status and the first line of the body.
* anything else, a timeout or no connection: 503 + ``Retry-After`` — never
  an upload the business did not approve. Logged with the cause.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gateway.config import HookConfig
from gateway.core.errors import HookRejected, ServiceUnavailable

from .signing import hook_request

log = logging.getLogger(__name__)

#: how much of a refusing hook's body reaches the client
_REASON_LIMIT = 1024
_ANSWER_LIMIT = 64 * 1024
RETRY_AFTER = 5


@dataclass(frozen=True)
class Changes:
    """What a ``pre-create`` hook asked to change (None = unchanged)."""

    key: str | None = None
    bucket: str | None = None
    metadata: dict[str, str] | None = None
    size_limit: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def _changes(answer: Any, url: str) -> Changes:
    if not isinstance(answer, dict):
        return Changes()

    def text(name: str) -> str | None:
        value = answer.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise _broken(url, f"{name!r} must be a non-empty string")
        return value

    metadata = answer.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise _broken(url, "'metadata' must map strings to strings")
    limit = answer.get("sizeLimit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise _broken(url, "'sizeLimit' must be a non-negative integer")
    return Changes(text("key"), text("bucket"), metadata, limit, answer)


def _broken(url: str, why: str) -> ServiceUnavailable:
    log.error("hook %s answered something unusable: %s", url, why)
    return ServiceUnavailable("an upload hook is unavailable; retry later", RETRY_AFTER)


class SyncHooks:
    def __init__(self, hooks: list[HookConfig]) -> None:
        self.hooks = hooks
        self._session: aiohttp.ClientSession | None = None
        #: told of every call: (event, answered) — a refusal is an answer (metrics)
        self.on_attempt: Callable[[str, bool], None] | None = None

    def configured(self, event: str) -> bool:
        return any(event in h.events for h in self.hooks)

    async def call(self, event: str, payload: dict[str, Any]) -> Changes:
        """Ask every hook of ``event`` in order; the changes of the last that
        made any. Raises ``HookRejected`` or ``ServiceUnavailable``."""
        changes = Changes()
        for hook in self.hooks:
            if event in hook.events:
                try:
                    answer = await self._ask(hook, event, payload)
                except ServiceUnavailable:
                    self._attempted(event, False)
                    raise
                except HookRejected:
                    self._attempted(event, True)
                    raise
                self._attempted(event, True)
                if event == "pre-create":
                    found = _changes(answer, hook.url)
                    if found.raw:
                        changes = found
        return changes

    def _attempted(self, event: str, answered: bool) -> None:
        if self.on_attempt is not None:
            self.on_attempt(event, answered)

    async def _ask(self, hook: HookConfig, event: str, payload: dict[str, Any]) -> Any:
        body, headers = hook_request(event, {"event": event, **payload}, hook.secret)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                hook.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=hook.timeout),
            ) as resp:
                text = (await resp.content.read(_ANSWER_LIMIT)).decode("utf-8", "replace")
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.error("%s hook %s failed: %s", event, hook.url, exc or type(exc).__name__)
            raise ServiceUnavailable(
                "an upload hook is unavailable; retry later", RETRY_AFTER
            ) from None
        if 200 <= status < 300:
            if not text.strip():
                return None
            try:
                return json.loads(text)
            except ValueError:
                raise _broken(hook.url, "a 2xx body that is not JSON") from None
        if 400 <= status < 500:
            reason = (text.strip().splitlines() or [""])[0][:_REASON_LIMIT]
            log.info("%s hook %s refused with %d: %s", event, hook.url, status, reason)
            raise HookRejected(status, reason or f"refused by the {event} hook")
        log.error("%s hook %s answered %d", event, hook.url, status)
        raise ServiceUnavailable("an upload hook is unavailable; retry later", RETRY_AFTER)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
