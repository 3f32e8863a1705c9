"""What backends report about their calls to the store, without importing
the gateway.

A ``Telemetry`` sink receives three kinds of facts, each with bounded
labels (never a key, an id or a user):

* a **request** to the store: backend name, operation (``upload_part``,
  ``complete``, ``put_segment``, ``append``, ``fsync``, …), seconds, outcome
  (``ok`` / ``not_found`` / ``error`` / ``cancelled``);
* an **error**: backend, operation, reason (``unavailable``, ``timeout``,
  ``not_found``, … — see ``reason_of``);
* a **fallback**: the backend did something slower or different from its
  usual way because the store refused it (backend, operation, reason).

The base class is the no-op default (``NO_TELEMETRY``); the gateway passes
its Prometheus implementation in ``BackendContext.telemetry``. A backend
uses the ``BackendTelemetry`` bound to its name (``Backend.telemetry``)::

    with self.telemetry.timed("upload_part"):
        await ...
    self.telemetry.fallback("upload_part", "streaming_refused", "re-sent buffered")

``warn_limited`` logs a WARNING at most once per cause per minute, saying
how many were suppressed meanwhile; ``fallback`` uses it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from types import TracebackType

from backends.errors import (
    BackendConfigError,
    BackendError,
    BackendUnavailable,
    InvalidState,
    NotFound,
)

log = logging.getLogger(__name__)

#: outcome label values of a store request
OK = "ok"
NOT_FOUND = "not_found"  # an answer, not a failure: no error is counted
ERROR = "error"
CANCELLED = "cancelled"


class Telemetry:
    """The sink. This base class ignores everything (the default)."""

    def backend_request(self, backend: str, operation: str, seconds: float, outcome: str) -> None:
        """One request to the store took ``seconds`` and ended with ``outcome``."""

    def backend_error(self, backend: str, operation: str, reason: str) -> None:
        """A request to the store failed for ``reason``."""

    def backend_fallback(self, backend: str, operation: str, reason: str) -> None:
        """The backend fell back to another way of doing ``operation``."""

    def bound(self, backend: str) -> BackendTelemetry:
        return BackendTelemetry(backend, self)


NO_TELEMETRY = Telemetry()

_ERROR_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (NotFound, "not_found"),
    (BackendUnavailable, "unavailable"),
    (InvalidState, "invalid_state"),
    (BackendConfigError, "config"),
    (BackendError, "store_error"),
    (TimeoutError, "timeout"),
    (ConnectionError, "connection"),
    (OSError, "os_error"),
)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def reason_of(exc: BaseException) -> str:
    """A bounded label value for ``exc``: its ``telemetry_reason`` attribute if
    it has one, else its category (``not_found``, ``unavailable``,
    ``timeout``, ``connection``, …), else its class name in snake case."""
    reason = getattr(exc, "telemetry_reason", None)
    if isinstance(reason, str) and reason:
        return reason
    for cls, name in _ERROR_REASONS:
        if isinstance(exc, cls):
            return name
    return _CAMEL.sub("_", type(exc).__name__).lower()


class RateLimiter:
    """Lets one event per cause through per ``interval`` seconds and counts
    the ones it held back. Remembers at most ``max_causes`` causes (the
    longest unseen are forgotten first)."""

    def __init__(self, interval: float = 60.0, max_causes: int = 1024) -> None:
        self.interval = interval
        self.max_causes = max_causes
        #: cause → (time it last passed, events held back since)
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def allow(self, cause: str, now: float | None = None) -> int | None:
        """None to hold this event back; else how many were held back since
        the last one that passed."""
        now = time.monotonic() if now is None else now
        last = self._seen.get(cause)
        if last is not None and now - last[0] < self.interval:
            self._seen[cause] = (last[0], last[1] + 1)
            return None
        self._seen[cause] = (now, 0)
        self._seen.move_to_end(cause)
        while len(self._seen) > self.max_causes:
            self._seen.popitem(last=False)
        return last[1] if last is not None else 0


_WARNINGS = RateLimiter()


def warn_limited(logger: logging.Logger, cause: str, message: str, *args: object) -> bool:
    """``logger.warning(message, *args)`` unless a warning with the same
    ``cause`` passed in the last minute; True if it was logged."""
    held = _WARNINGS.allow(f"{logger.name}\0{cause}")
    if held is None:
        return False
    if held:
        message += " (%d more like this in the last minute)"
        args = (*args, held)
    logger.warning(message, *args)
    return True


class Timed:
    """The context manager of ``BackendTelemetry.timed`` (a class, not a
    generator: it runs around every store request)."""

    __slots__ = ("_operation", "_start", "_telemetry")

    def __init__(self, telemetry: BackendTelemetry, operation: str) -> None:
        self._telemetry = telemetry
        self._operation = operation
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        t = self._telemetry
        seconds = time.perf_counter() - self._start
        if exc is None:
            outcome = OK
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
            outcome = CANCELLED
        elif isinstance(exc, NotFound):
            outcome = NOT_FOUND
        else:
            outcome = ERROR
            t.sink.backend_error(t.backend, self._operation, reason_of(exc))
        t.sink.backend_request(t.backend, self._operation, seconds, outcome)


class BackendTelemetry:
    """A sink bound to one backend's name, with the helpers backends use."""

    def __init__(self, backend: str, sink: Telemetry) -> None:
        self.backend = backend
        self.sink = sink
        self.log = logging.getLogger(f"backends.{backend}")

    def timed(self, operation: str) -> Timed:
        """``with telemetry.timed(op):`` times the store request inside; a
        failure is also an error whose reason is ``reason_of(exc)``. A
        cancelled request is ``cancelled`` and ``NotFound`` is ``not_found``,
        neither an error."""
        return Timed(self, operation)

    def request(self, operation: str, seconds: float, outcome: str = OK) -> None:
        self.sink.backend_request(self.backend, operation, seconds, outcome)

    def error(self, operation: str, reason: str) -> None:
        self.sink.backend_error(self.backend, operation, reason)

    def fallback(self, operation: str, reason: str, detail: str = "") -> None:
        """Count a fallback and log it at WARNING (once per minute per
        operation and reason): ``detail`` says what was done instead."""
        self.sink.backend_fallback(self.backend, operation, reason)
        warn_limited(
            self.log,
            f"fallback:{operation}:{reason}",
            "backend %s: %s fell back (%s)%s",
            self.backend,
            operation,
            reason,
            f": {detail}" if detail else "",
        )

    def warn(self, cause: str, message: str, *args: object) -> bool:
        """A WARNING on this backend's logger, at most once per minute per cause."""
        return warn_limited(self.log, cause, message, *args)
