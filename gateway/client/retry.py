"""Which failures are worth another try, and the backoff between tries.

Retried: connection errors, timeouts, 5xx and 423 (the upload is busy).
Never retried: 4xx — a ``Gone`` (the upload no longer exists) makes the
caller start a new upload, anything else is reported as it is."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

T = TypeVar("T")


class UploadError(Exception):
    """A failure that more tries will not fix; the message says why."""


class Gone(UploadError):
    """The server no longer knows the upload (expired, terminated, unknown)."""


class Transient(Exception):
    """Worth another try after a pause."""


def status_error(status: int, reason: str, body: str, what: str) -> Exception:
    """The exception for an unexpected HTTP answer to ``what``."""
    detail = body.strip().splitlines()[0][:200] if body.strip() else reason
    message = f"{what}: HTTP {status} {detail}"
    if status >= 500 or status in (408, 423, 429):
        return Transient(message)
    return UploadError(message)


@dataclass(frozen=True)
class Backoff:
    attempts: int = 10
    first: float = 0.5
    cap: float = 15.0

    def delay(self, attempt: int) -> float:
        return float(min(self.cap, self.first * 2**attempt))


async def retrying(
    op: Callable[[], Awaitable[T]],
    backoff: Backoff,
    on_retry: Callable[[str, float], None],
) -> T:
    """``op()``, tried again after ``Transient`` and connection errors."""
    attempt = 0
    while True:
        try:
            return await op()
        except (TimeoutError, Transient, aiohttp.ClientError, ConnectionError) as exc:
            if attempt + 1 >= backoff.attempts:
                raise UploadError(
                    f"gave up after {backoff.attempts} tries: {describe(exc)}"
                ) from exc
            delay = backoff.delay(attempt)
            on_retry(describe(exc), delay)
            attempt += 1
            await asyncio.sleep(delay)


def describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
