"""Events and webhooks.

``post-*`` events are delivered asynchronously to the configured hook URLs
with retries and exponential backoff; a slow or failing hook never delays an
upload. ``post-finish`` is emitted exactly once per object, by the request
that saved the finished state.

The core's own events (``PART_COMPLETE``, ``ASSEMBLY_ABANDONED``) are how one concern wakes another
without importing it: ``notify`` awaits the handlers ``subscribe`` gave, in
the request that raised the event; they never reach a webhook or a listener.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from backends.telemetry import warn_limited
from gateway.access.signing import hook_request
from gateway.config import HookConfig
from gateway.core import digests
from gateway.core.records import UploadRecord

log = logging.getLogger(__name__)

Listener = Callable[[str, UploadRecord], None]
UrlResolver = Callable[[UploadRecord], Awaitable[str | None]]
#: a handler of a core event, awaited by the request that raised it
Handler = Callable[[UploadRecord], Awaitable[None]]

#: a ``Kind.PART`` stream was sealed (``COMPLETE``) and its lock released:
#: the assemblies waiting for it may be made (``assembly.py``)
PART_COMPLETE = "part-complete"
#: an assembly ended (terminated, expired) before it was made: the parts it
#: listed are released (``assembly.py``)
ASSEMBLY_ABANDONED = "assembly-abandoned"


def event_payload(event: str, record: UploadRecord) -> dict[str, Any]:
    return {
        "event": event,
        "id": record.id,
        "protocol": record.protocol,
        "bucket": record.bucket,
        "key": record.key,
        "size": record.length,
        "offset": record.offset,
        "metadata": record.metadata,
        "hash": record.extra.get("hash"),
        # the object's SHA-256 (lowercase hex), computed as its bytes passed
        "sha256": record.extra.get(digests.SHA256),
        "url": record.extra.get("url"),
    }


class Events:
    """Emits events to in-process listeners and, in order, to each hook URL
    (one delivery worker per hook, so a business service sees an upload's
    ``post-create`` before its ``post-finish``)."""

    QUEUE_LIMIT = 10_000

    def __init__(self, hooks: list[HookConfig]) -> None:
        self.hooks = hooks
        self.listeners: list[Listener] = []
        self._queues: list[asyncio.Queue[tuple[str, UploadRecord]]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        #: gives the object URL for a payload (set by the service)
        self.url_for: UrlResolver | None = None
        #: deliveries queued and not yet done, per event (for the metrics)
        self.pending: collections.Counter[str] = collections.Counter()
        #: told of every delivery attempt: (event, succeeded)
        self.on_attempt: Callable[[str, bool], None] | None = None
        self._handlers: dict[str, list[Handler]] = {}

    def subscribe(self, event: str, handler: Handler) -> None:
        """Have ``handler`` awaited whenever the core raises ``event``."""
        self._handlers.setdefault(event, []).append(handler)

    async def notify(self, event: str, record: UploadRecord) -> None:
        """Await each handler of the core event ``event`` in turn; a handler's
        error reaches the caller (a store down answers 503)."""
        for handler in self._handlers.get(event, ()):
            await handler(record)

    def emit(self, event: str, record: UploadRecord) -> None:
        for listener in self.listeners:
            try:
                listener(event, record)
            except Exception:
                log.exception("event listener failed")
        if self.hooks and not self._workers:
            self._start_workers()
        for hook, queue in zip(self.hooks, self._queues, strict=True):
            if event not in hook.events or event.startswith("pre-"):
                continue
            try:
                queue.put_nowait((event, record))
                self.pending[event] += 1
            except asyncio.QueueFull:
                log.error("hook %s is backed up; dropped %s for %s", hook.url, event, record.id)

    def _start_workers(self) -> None:
        loop = asyncio.get_running_loop()
        for hook in self.hooks:
            queue: asyncio.Queue[tuple[str, UploadRecord]] = asyncio.Queue(self.QUEUE_LIMIT)
            self._queues.append(queue)
            self._workers.append(loop.create_task(self._work(hook, queue)))

    async def _work(self, hook: HookConfig, queue: asyncio.Queue[tuple[str, UploadRecord]]) -> None:
        while True:
            event, record = await queue.get()
            try:
                await self._deliver(hook, event, record)
            except Exception:
                log.exception("hook %s failed on %s", hook.url, event)
            finally:
                self.pending[event] -= 1

    async def _deliver(self, hook: HookConfig, event: str, record: UploadRecord) -> None:
        payload = event_payload(event, record)
        if payload["url"] is None and event == "post-finish" and self.url_for is not None:
            try:
                payload["url"] = await self.url_for(record)
            except Exception:
                log.warning("no object URL for %s", record.id, exc_info=True)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body, headers = hook_request(event, payload, hook.secret)
        delay = 0.5
        for attempt in range(hook.retries + 1):
            try:
                async with self._session.post(
                    hook.url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=hook.timeout),
                ) as resp:
                    self._attempted(event, resp.status < 400)
                    if resp.status < 500:
                        if resp.status >= 400:
                            log.warning("hook %s refused %s: %s", hook.url, event, resp.status)
                        return
                    warn_limited(log, f"hook:{hook.url}", "hook %s answered %s: retrying %s",
                                 hook.url, resp.status, event)  # fmt: skip
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._attempted(event, False)
                warn_limited(log, f"hook:{hook.url}", "hook %s attempt %d failed: %s",
                             hook.url, attempt + 1, exc)  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)
        log.error("hook %s gave up on %s for %s", hook.url, event, record.id)

    def _attempted(self, event: str, ok: bool) -> None:
        if self.on_attempt is not None:
            self.on_attempt(event, ok)

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        if self._workers:
            await asyncio.gather(*self._workers, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
