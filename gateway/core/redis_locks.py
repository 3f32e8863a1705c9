"""Distributed per-upload locks on Redis (ARCHITECTURE.md §7).

A lock is a lease: ``<prefix>lock:<key>`` holds a random token and expires
after ``lease`` seconds (3 by default) unless its holder renews it, which a
background task does every ``lease / 4`` while the lock is held. Release
deletes the key only if it still holds the holder's token (Lua), so a holder
whose lease ran out cannot free somebody else's lock. A short lease is what
lets another instance continue the uploads of an instance that died (SIGKILL,
power) within seconds instead of waiting out a long lease.

A waiter polls, and asks the holder to finish by publishing ``req <key>`` on
``<prefix>locks`` (every instance listens to that one channel and sets
``release_requested`` on its lease). It also sets ``<prefix>lock:<key>:wanted``
so the holder's release publishes ``rel <key>``, which wakes waiters at once.

Two writers never interleave: a holder hands no byte to the store later
than half a lease after its last confirmed acquire or renewal
(``Lease.valid_until``, checked by the body guard against the clock, so even
an event loop frozen past its lease cannot write on), while nobody else can
take the lock before the whole lease has passed since that confirmation; the
other half is the margin for a write already in flight. If renewal finds
another token, or cannot reach Redis in time, ``lease.lost`` is set and the
writer stops at once. Saves are compare-and-set on the record version anyway,
so even a holder that noticed too late cannot commit over a newer writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from gateway.core.errors import Locked, ServiceUnavailable
from gateway.core.locks import Lease, LockManager
from gateway.core.redis_conn import CALL_TIMEOUT, DEFAULT_PREFIX, connect, guard

log = logging.getLogger(__name__)

# KEYS: lock. ARGV: token, lease ms. Idempotent for the same token.
_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lock. ARGV: token, lease ms.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lock, wanted flag. ARGV: token, channel, message.
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return 1
"""

_POLL_MIN = 0.02
_POLL_MAX = 0.25
#: a waiter repeats its release request this often (a new holder may have won)
_REQUEST_EVERY = 1.0
#: the lock channel is pinged after this much silence (a dead connection shows)
_LISTEN_PING = 10.0


@dataclass
class _Held:
    lease: Lease
    token: str
    #: set when the holder leaves; stops the renewal task
    done: asyncio.Event = field(default_factory=asyncio.Event)
    renewal: asyncio.Task[None] | None = None


class RedisLocks(LockManager):
    def __init__(
        self,
        url: str,
        acquire_timeout: float = 20.0,
        lease: float = 3.0,
        *,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        super().__init__(acquire_timeout)
        if lease <= 0:
            raise ValueError("lease must be positive")
        self.url = url
        self.lease = lease
        self.prefix = prefix
        self.channel = f"{prefix}locks"
        self._redis: Any = None
        self._scripts: dict[str, Any] = {}
        self._held: dict[str, dict[str, _Held]] = {}  # key → token → held
        self._waiters: dict[str, set[asyncio.Event]] = {}  # key → wake-ups of local waiters
        self._listener: asyncio.Task[None] | None = None
        self._closing = False
        self._subscribed = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease * 1000))

    @property
    def _stop_after(self) -> float:
        """How long after a confirmation the holder may still write."""
        return self.lease / 2

    @property
    def _call_timeout(self) -> float:
        return min(CALL_TIMEOUT, max(0.5, self.lease / 3))

    def _lock_key(self, key: str) -> str:
        return f"{self.prefix}lock:{key}"

    # -- lifecycle ---------------------------------------------------------------
    async def open(self) -> None:
        self._redis = connect(self.url)
        for name, script in (("acquire", _ACQUIRE), ("renew", _RENEW), ("release", _RELEASE)):
            self._scripts[name] = self._redis.register_script(script)
        self._listener = asyncio.get_running_loop().create_task(self._listen())
        # not fatal: waiters poll anyway; holders hear requests once subscribed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._subscribed.wait()

    async def close(self) -> None:
        self._closing = True
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait({self._listener}, timeout=2.0)
            self._listener = None
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()

    async def ping(self) -> None:
        async with guard("locks", self._call_timeout):
            await self._redis.ping()
        if not self._subscribed.is_set():
            raise ServiceUnavailable("locks: not subscribed to release requests yet")

    # -- holding -----------------------------------------------------------------
    @asynccontextmanager
    async def hold(self, key: str, timeout: float | None = None) -> AsyncIterator[Lease]:
        token = secrets.token_hex(16)
        held = _Held(Lease(key), token)
        since = await self._acquire(key, token, timeout or self.acquire_timeout)
        held.lease.valid_until = since + self._stop_after
        self._held.setdefault(key, {})[token] = held
        held.renewal = asyncio.get_running_loop().create_task(self._renew(held, since))
        try:
            yield held.lease
        finally:
            held.done.set()
            tokens = self._held.get(key, {})
            tokens.pop(token, None)
            if not tokens:
                self._held.pop(key, None)
            await self._release_quietly(key, token)

    async def _acquire(self, key: str, token: str, timeout: float) -> float:
        """Wait for the lock; return when the winning attempt was sent."""
        deadline = time.monotonic() + timeout
        wake = asyncio.Event()
        self._waiters.setdefault(key, set()).add(wake)
        poll, asked_at = _POLL_MIN, float("-inf")
        try:
            while True:
                wake.clear()
                sent = time.monotonic()
                async with guard("locks", self._call_timeout):
                    won = await self._scripts["acquire"](
                        keys=[self._lock_key(key)], args=[token, self._lease_ms]
                    )
                if won:
                    return sent
                now = time.monotonic()
                if now >= deadline:
                    raise Locked("the upload is busy with another request")
                if now - asked_at >= _REQUEST_EVERY:
                    asked_at = now
                    await self._ask_release(key)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(poll, deadline - now)):
                        await wake.wait()
                poll = min(poll * 2, _POLL_MAX)
        except (asyncio.CancelledError, ServiceUnavailable):
            # the acquire script may have run before a cancellation or a timeout
            self._spawn(self._release_quietly(key, token))
            raise
        finally:
            events = self._waiters.get(key, set())
            events.discard(wake)
            if not events:
                self._waiters.pop(key, None)

    async def _ask_release(self, key: str) -> None:
        for held in self._held.get(key, {}).values():  # holder in this process
            held.lease.release_requested.set()
        wanted_ttl = int(2 * max(_REQUEST_EVERY, self.acquire_timeout) * 1000)
        async with (
            guard("locks", self._call_timeout),
            self._redis.pipeline(transaction=False) as pipe,
        ):
            pipe.set(f"{self._lock_key(key)}:wanted", 1, px=wanted_ttl)
            pipe.publish(self.channel, f"req {key}")
            await pipe.execute()

    async def _release_quietly(self, key: str, token: str) -> None:
        """Token-checked release; a failure only leaves the lease to expire."""
        lock = self._lock_key(key)

        async def release() -> None:
            async with guard("locks", self._call_timeout):
                await self._scripts["release"](
                    keys=[lock, f"{lock}:wanted"], args=[token, self.channel, f"rel {key}"]
                )

        try:
            await asyncio.shield(release())
        except Exception as exc:
            log.warning("could not release lock %s: %s", key, exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _renew(self, held: _Held, confirmed: float) -> None:
        """Extend the lease every lease/4 until ``done``; set ``lost`` if it
        cannot be kept. ``confirmed``: when the last successful acquire or
        renewal was sent (the lease is valid until ``confirmed + lease``, the
        holder writes until ``confirmed + lease / 2``)."""
        key = self._lock_key(held.lease.key)
        interval = self.lease / 4
        delay = interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, confirmed + delay - time.monotonic())):
                    await held.done.wait()
            if held.done.is_set():
                return
            # stop the writer well before the lease could run out
            deadline = confirmed + self._stop_after
            sent = time.monotonic()
            try:
                async with guard("locks", max(0.01, deadline - sent)):
                    ok = await self._scripts["renew"](keys=[key], args=[held.token, self._lease_ms])
            except ServiceUnavailable as exc:
                if time.monotonic() >= deadline:
                    log.warning("lock %s: lease lost (%s)", held.lease.key, exc)
                    held.lease.lost.set()
                    return
                delay = time.monotonic() - confirmed + min(0.1, interval / 4)  # retry soon
                continue
            if not ok:
                log.warning("lock %s: lease lost (taken over)", held.lease.key)
                held.lease.lost.set()
                return
            confirmed, delay = sent, interval
            held.lease.valid_until = confirmed + self._stop_after

    # -- release requests --------------------------------------------------------
    async def _listen(self) -> None:
        """Follow the lock channel, resubscribing after Redis comes back."""
        backoff = 0.05
        while not self._closing:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                async with guard("locks", self._call_timeout):
                    await pubsub.subscribe(self.channel)
                self._subscribed.set()
                backoff = 0.05
                quiet_since = time.monotonic()
                while not self._closing:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        quiet_since = time.monotonic()
                        if message.get("type") == "message":
                            self._dispatch(message.get("data"))
                    elif time.monotonic() - quiet_since > _LISTEN_PING:
                        quiet_since = time.monotonic()
                        async with guard("locks", self._call_timeout):
                            await pubsub.ping()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._subscribed.is_set():
                    log.warning("lock channel: %s; resubscribing", exc)
                self._subscribed.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())

    def _dispatch(self, data: Any) -> None:
        if not isinstance(data, bytes):
            return
        kind, _, key = data.decode(errors="replace").partition(" ")
        if kind == "req":
            for held in self._held.get(key, {}).values():
                held.lease.release_requested.set()
        elif kind == "rel":
            for event in list(self._waiters.get(key, ())):
                event.set()
