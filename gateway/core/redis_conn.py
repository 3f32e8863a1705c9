"""The Redis connection shared by the Redis state store and locks.

redis-py (asyncio) is imported lazily so a gateway without Redis does not
need it. Every call goes through ``guard``: it bounds the call with
``asyncio.timeout`` and turns "Redis cannot be reached" into
``ServiceUnavailable`` at this one boundary. The client itself gets no
``socket_timeout``: redis-py then wraps socket writes in ``asyncio.wait_for``,
which on Python 3.11 can swallow a task's cancellation. A stale pooled
connection (Redis restarted) is retried once on a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from gateway.core.errors import ServiceUnavailable

#: key prefix of everything the gateway stores in Redis
DEFAULT_PREFIX = "ugw:"
#: longest a single Redis call may take before the request gets a 503
CALL_TIMEOUT = 5.0

_INSTALL_HINT = "the redis state store / locks need redis-py: pip install 'upload-gateway[redis]'"


def connect(url: str) -> Any:
    """A ``redis.asyncio.Redis`` client for ``url`` (connects lazily)."""
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff
        from redis.exceptions import ConnectionError
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
        raise ServiceUnavailable(_INSTALL_HINT) from exc
    return Redis.from_url(
        url,
        socket_timeout=None,  # bounded by ``guard`` instead (see above)
        socket_connect_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1),
        retry_on_error=[ConnectionError],
        decode_responses=False,
    )


@contextlib.asynccontextmanager
async def guard(what: str, timeout: float = CALL_TIMEOUT) -> AsyncIterator[None]:
    """Bound the Redis calls inside by ``timeout``; unreachable → 503."""
    from redis.exceptions import ConnectionError, ReadOnlyError
    from redis.exceptions import TimeoutError as RedisTimeout

    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError as exc:
        raise ServiceUnavailable(f"{what}: redis did not answer in time", retry_after=1) from exc
    except (ConnectionError, RedisTimeout, ReadOnlyError, OSError) as exc:
        raise ServiceUnavailable(f"{what}: redis unavailable: {exc}", retry_after=1) from exc
