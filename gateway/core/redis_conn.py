"""The Redis connection shared by the Redis state store and locks.

redis-py (asyncio) is imported lazily by the callers so a gateway without
Redis does not need it. Connection failures become ``ServiceUnavailable``
at this one boundary; a stale pooled connection (Redis restarted) is
retried once on a fresh one before that.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from gateway.core.errors import ServiceUnavailable

#: key prefix of everything the gateway stores in Redis
DEFAULT_PREFIX = "ugw:"

_INSTALL_HINT = "the redis state store / locks need redis-py: pip install 'upload-gateway[redis]'"


def connect(url: str, *, socket_timeout: float = 5.0) -> Any:
    """A ``redis.asyncio.Redis`` client for ``url`` (connects lazily)."""
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff
        from redis.exceptions import ConnectionError, TimeoutError
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
        raise ServiceUnavailable(_INSTALL_HINT) from exc
    return Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=min(socket_timeout, 2.0),
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1),
        retry_on_error=[ConnectionError, TimeoutError],
        decode_responses=False,
    )


@contextlib.contextmanager
def unavailable_on_error(what: str) -> Iterator[None]:
    """Translate "Redis cannot be reached" into ``ServiceUnavailable``."""
    from redis.exceptions import ConnectionError, ReadOnlyError, TimeoutError

    try:
        yield
    except (ConnectionError, TimeoutError, ReadOnlyError, OSError) as exc:
        raise ServiceUnavailable(f"{what}: redis unavailable: {exc}", retry_after=1) from exc
