"""The state store and the locks, observed from outside: one wrapping point
each instead of metrics sprinkled through the core.

* ``ObservedState`` counts the calls that fail (``state_errors_total``) and
  names, in the request's context, the first upload a request reads or
  creates (so its log lines carry the upload id, bucket and key).
* ``ObservedLocks`` times every lock wait and counts the ones that gave up.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TypeVar

from gateway.core.errors import Locked, ServiceUnavailable
from gateway.core.locks import Lease, LockManager
from gateway.core.records import UploadRecord
from gateway.core.state.base import Cursor, IndexedObject, StateStore
from gateway.observability import context
from gateway.observability.metrics import Metrics

T = TypeVar("T")


class ObservedState(StateStore):
    def __init__(self, inner: StateStore, metrics: Metrics, store: str) -> None:
        self.inner = inner
        self._errors = metrics.state_errors.labels(store)

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except ServiceUnavailable:
            self._errors.inc()
            raise

    async def open(self) -> None:
        await self._call(self.inner.open())

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> None:
        await self._call(self.inner.ping())

    async def create(self, record: UploadRecord) -> None:
        context.annotate(record.id, record.bucket, record.key)
        await self._call(self.inner.create(record))

    async def get(self, upload_id: str) -> UploadRecord | None:
        record = await self._call(self.inner.get(upload_id))
        if record is not None:
            context.annotate(record.id, record.bucket, record.key)
        return record

    async def get_many(self, upload_ids: list[str]) -> list[UploadRecord | None]:
        return await self._call(self.inner.get_many(upload_ids))

    async def save(self, record: UploadRecord) -> bool:
        context.annotate(record.id, record.bucket, record.key)
        return await self._call(self.inner.save(record))

    async def delete(self, upload_id: str) -> None:
        await self._call(self.inner.delete(upload_id))

    async def expired(self, now: float, limit: int = 100) -> list[str]:
        return await self._call(self.inner.expired(now, limit))

    async def unfinished(
        self, limit: int = 100, *, after: Cursor | None = None, newest_first: bool = False
    ) -> list[UploadRecord]:
        return await self._call(
            self.inner.unfinished(limit, after=after, newest_first=newest_first)
        )

    async def kv_get(self, namespace: str, key: str) -> str | None:
        return await self._call(self.inner.kv_get(namespace, key))

    async def kv_set(self, namespace: str, key: str, value: str) -> None:
        await self._call(self.inner.kv_set(namespace, key, value))

    async def kv_delete(self, namespace: str, key: str) -> None:
        await self._call(self.inner.kv_delete(namespace, key))

    async def index_put(self, entry: IndexedObject) -> None:
        await self._call(self.inner.index_put(entry))

    async def index_remove(self, bucket: str, key: str, upload_id: str | None = None) -> None:
        await self._call(self.inner.index_remove(bucket, key, upload_id))

    async def index_get(self, bucket: str, key: str) -> IndexedObject | None:
        return await self._call(self.inner.index_get(bucket, key))

    async def index_find(
        self, bucket: str, sha256: str, size: int, owner: str | None, limit: int = 8
    ) -> list[IndexedObject]:
        return await self._call(self.inner.index_find(bucket, sha256, size, owner, limit))


class ObservedLocks(LockManager):
    def __init__(self, inner: LockManager, metrics: Metrics) -> None:
        super().__init__(inner.acquire_timeout)
        self.inner = inner
        self._wait = metrics.lock_wait
        self._timeouts = metrics.lock_timeouts

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> None:
        await self.inner.ping()

    def hold(self, key: str, timeout: float | None = None) -> AbstractAsyncContextManager[Lease]:
        return _TimedHold(self.inner.hold(key, timeout), self)


class _TimedHold(AbstractAsyncContextManager[Lease]):
    """The inner lock's hold, its wait timed (a class: no generator per hold)."""

    __slots__ = ("_held", "_locks")

    def __init__(self, held: AbstractAsyncContextManager[Lease], locks: ObservedLocks) -> None:
        self._held = held
        self._locks = locks

    async def __aenter__(self) -> Lease:
        start = time.perf_counter()
        try:
            lease = await self._held.__aenter__()
        except Locked:
            self._locks._timeouts.inc()
            self._locks._wait.observe(time.perf_counter() - start)
            raise
        self._locks._wait.observe(time.perf_counter() - start)
        return lease

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._held.__aexit__(kind, exc, tb)
