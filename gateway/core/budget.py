"""The global memory budget for part buffers.

Backends that must hold bytes before sending them (S3 parts, packed tails)
``acquire`` the size first and ``release`` it when the buffer is gone; when
the budget is spent, new data waits (back-pressure on the client) instead of
growing memory. Peak buffer memory is bounded by the budget, whatever the
number or size of uploads.

Backends take budget only once bytes have arrived, never for a body that was
merely announced. Who waits for how long:

* a request that already holds or held budget (``request_scope``, one per
  HTTP request) is *continuing*: it is served before any new request, so new
  work can never starve an upload under way, and waits at most
  ``wait_under_way`` seconds (a store that stopped taking parts must not hold
  a request for good);
* a new request waits at most ``wait`` seconds in line.

Either then fails with ``BudgetExhausted`` (a ``BackendUnavailable``: 503
with ``Retry-After``), logged and counted (``on_refused`` gets ``"new"`` or
``"under_way"``); the client resumes at the offset the upload then reports.

Both lines are first come, first served; a request larger than the whole
budget gets all of it alone, never deadlocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from backends.errors import BackendUnavailable
from backends.telemetry import warn_limited

log = logging.getLogger(__name__)

#: what a refused request is told to wait before retrying, in seconds
RETRY_AFTER = 2


class BudgetExhausted(BackendUnavailable):
    """New work waited too long for memory: retry later."""

    telemetry_reason = "memory_budget"


@dataclass
class _Scope:
    #: this request was granted budget before: it is continuing work
    admitted: bool = False


@dataclass
class _Waiter:
    size: int
    granted: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


_SCOPE: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("budget_scope", default=None)


@contextlib.contextmanager
def request_scope() -> Iterator[None]:
    """Around one request: after its first grant, its later acquisitions
    (in any task it starts) are continuing work."""
    token = _SCOPE.set(_Scope())
    try:
        yield
    finally:
        _SCOPE.reset(token)


class Budget:
    def __init__(self, total: int, wait: float = 3.0, wait_under_way: float = 30.0) -> None:
        self.total = total
        #: how long new work waits in line before ``BudgetExhausted``
        self.wait = wait
        #: how long a request under way waits for more before ``BudgetExhausted``
        self.wait_under_way = wait_under_way
        #: called for each refusal with ``"new"`` or ``"under_way"`` (a metric's label)
        self.on_refused: Callable[[str], object] = lambda _waiting: None
        self.used = 0
        self._continuing: deque[_Waiter] = deque()
        self._new: deque[_Waiter] = deque()

    async def acquire(self, size: int) -> None:
        size = min(size, self.total)
        scope = _SCOPE.get()
        continuing = scope is not None and scope.admitted
        line = self._continuing if continuing else self._new
        if not self._continuing and not line and self.used + size <= self.total:
            self.used += size
        else:
            waiter = _Waiter(size)
            line.append(waiter)
            await self._wait(waiter, continuing)
        if scope is not None:
            scope.admitted = True

    async def _wait(self, waiter: _Waiter, continuing: bool) -> None:
        timeout = self.wait_under_way if continuing else self.wait
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(waiter.granted)
        except TimeoutError:
            if waiter.granted.done():  # granted as time ran out: keep it
                return
            self._drop(waiter)
            waiting = "under_way" if continuing else "new"
            self.on_refused(waiting)
            warn_limited(
                log,
                f"exhausted-{waiting}",
                "memory budget exhausted (%d of %d bytes in use): %s waited %.1fs "
                "for %d bytes and is refused with 503",
                self.used,
                self.total,
                "a request under way" if continuing else "a new request",
                timeout,
                waiter.size,
            )
            raise BudgetExhausted(
                "the gateway's memory budget is in use; retry later", retry_after=RETRY_AFTER
            ) from None
        except asyncio.CancelledError:
            if waiter.granted.done():
                self.release(waiter.size)
            else:
                self._drop(waiter)
            raise

    def _drop(self, waiter: _Waiter) -> None:
        for line in (self._continuing, self._new):
            with contextlib.suppress(ValueError):
                line.remove(waiter)
        waiter.granted.cancel()
        self._grant()  # a large waiter at the head may have blocked smaller ones

    def release(self, size: int) -> None:
        self.used -= min(size, self.total)
        self._grant()

    def _grant(self) -> None:
        """Serve the lines in order, continuing work first; stop at the first
        waiter that does not fit (no overtaking)."""
        for line in (self._continuing, self._new):
            while line:
                waiter = line[0]
                if self.used + waiter.size > self.total:
                    return
                line.popleft()
                self.used += waiter.size
                waiter.granted.set_result(None)
