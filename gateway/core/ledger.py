"""The ledger every part of the core shares: buckets, records read with their
expiry checked and saved compare-and-set, locks, events, and the one place
where backend failures become the core's errors.

``uploads``, ``assembly``, ``expiry`` and ``reading`` each hold a ``Ledger``;
none of them imports another's class (``service`` wires them together).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from backends.base import Backend, StreamInfo
from backends.errors import BackendError, BackendUnavailable, DigestMismatch
from backends.errors import Exists as BackendExists
from backends.errors import NotFound as BackendNotFound
from gateway.config import GatewayConfig
from gateway.core import digest_index, digests, object_meta
from gateway.core.body import GuardedBody
from gateway.core.errors import (
    BadRequest,
    ChecksumMismatch,
    HookRejected,
    ObjectExists,
    ServiceUnavailable,
    TooLarge,
    UploadError,
    UploadGone,
    UploadNotFound,
)
from gateway.core.events import Events
from gateway.core.locks import Lease, LockManager
from gateway.core.records import Kind, Status, UploadRecord
from gateway.core.state.base import StateStore

log = logging.getLogger(__name__)

#: asks whether ``record`` may become the object ``bucket/key``; raises to refuse
Approver = Callable[[UploadRecord, str, str], Awaitable[None]]

#: in a record's ``extra``: the pre-finish hook approved the object before
#: any byte was stored (``Uploads.put``), so it is not asked again and the
#: stream is written on its key even with a hook configured
APPROVED = "core:approved"

#: kv namespace: part id → JSON list of the assembly ids waiting for it
#: (written by ``assembly``, dropped with the part's record by ``expiry``)
CONCAT_WAIT = "concat-wait"


@dataclass(frozen=True)
class Bucket:
    name: str
    backend: Backend
    prefix: str

    def backend_key(self, key: str) -> str:
        return self.prefix + key


@contextlib.contextmanager
def backend_errors(missing: UploadError | None = None) -> Iterator[None]:
    """Translate a backend failure at the core's edge: the store down → 503
    with its Retry-After; the bytes not there → ``missing`` (by default
    ``UploadGone``: an upload's stored data vanished); the stored bytes not
    those the client's MD5 names → 406; any other → 503."""
    try:
        yield
    except BackendUnavailable as exc:
        raise ServiceUnavailable(str(exc), retry_after=exc.retry_after) from exc
    except BackendNotFound as exc:
        raise (missing or UploadGone(f"the stored data is gone: {exc}")) from exc
    except BackendExists as exc:  # asked for with ``StreamInfo.if_absent``
        raise ObjectExists(f"the key holds an object: {exc}") from exc
    except DigestMismatch:  # the store's check of a client's Content-MD5
        raise ChecksumMismatch("Content-MD5 mismatch") from None
    except BackendError as exc:
        raise ServiceUnavailable(f"storage error: {exc}") from exc


class Ledger:
    def __init__(
        self,
        config: GatewayConfig,
        state: StateStore,
        locks: LockManager,
        backends: dict[str, Backend],
        events: Events,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        #: the wall clock every expiry is reckoned by (tests move it)
        self.clock = clock
        self.state = state
        self.locks = locks
        self.events = events
        self.backends = backends
        self.buckets = {
            name: Bucket(name, backends[b.backend], b.prefix) for name, b in config.buckets.items()
        }
        #: clean-up started after a request was answered (``settle`` awaits it)
        self._after_answer: set[asyncio.Task[Any]] = set()
        #: asked before an upload becomes an object (the pre-finish hook)
        self.approve: Approver | None = None
        #: this instance as records and the ops view name it
        self.instance = f"{socket.gethostname()}:{config.server.port}"
        #: bodies being received on this instance: id(body) → (upload id, offset it began at, body)
        self.receiving: dict[int, tuple[str, int, GuardedBody]] = {}
        #: body bytes of the requests no longer in ``receiving``
        self.received_before = 0

    def bytes_received(self) -> int:
        """Every upload body byte this instance has received (monotonic)."""
        return self.received_before + sum(b.received for _, _, b in self.receiving.values())

    @contextlib.contextmanager
    def receiving_body(self, upload_id: str, offset: int, body: GuardedBody) -> Iterator[None]:
        """Shows ``body`` as in flight (the ops view's live bytes) while it is read."""
        self.receiving[id(body)] = (upload_id, offset, body)
        try:
            yield
        finally:
            del self.receiving[id(body)]
            self.received_before += body.received

    async def create(self, record: UploadRecord) -> None:
        record.instance = self.instance
        await self.state.create(record)

    def now(self) -> float:
        return self.clock()

    # -- lookup --------------------------------------------------------------------
    def bucket(self, name: str) -> Bucket:
        try:
            return self.buckets[name]
        except KeyError:
            raise UploadNotFound(f"no such bucket {name!r}") from None

    async def get(self, upload_id: str) -> UploadRecord:
        """The record, or ``UploadNotFound`` / ``UploadGone``."""
        record = await self.state.get(upload_id)
        if record is None:
            raise UploadNotFound("no such upload")
        if record.status in (Status.TERMINATED, Status.EXPIRED):
            reason = record.extra.get(digests.REJECTED)
            if reason:
                raise digests.DigestMismatch(str(reason))
            raise UploadGone(f"the upload was {record.status.value}")
        if (
            record.status in (Status.ACTIVE, Status.COMPLETE)
            and record.expires_at is not None
            and record.expires_at < self.now()
        ):
            raise UploadGone("the upload expired")
        return record

    # -- saving ----------------------------------------------------------------------
    async def save(self, record: UploadRecord) -> None:
        """Compare-and-set save; a lost race is a retryable 503, never a silent overwrite."""
        record.updated_at = self.now()
        record.instance = self.instance
        if not await self.state.save(record):
            raise ServiceUnavailable("the upload changed under this request; retry")

    def digesting(self, record: UploadRecord) -> bool:
        """Is ``record`` hashed as its bytes pass? Its bucket's ``digest``,
        a digest its creation declared, or a key named by its qetag
        (``core/digests.py``)."""
        b = self.config.buckets.get(record.bucket)
        return (
            b is None
            or b.digest != "off"
            or bool(digests.declared(record))
            or object_meta.named_by_etag(record)  # its qetag names it
        )

    def expiry(self) -> float:
        """When an upload touched now expires."""
        return self.now() + self.config.uploads.expire_after

    def mark_finished(self, record: UploadRecord) -> None:
        record.status = Status.FINISHED
        record.expires_at = None

    def tombstone(self, record: UploadRecord, status: Status) -> None:
        """``record`` ends (terminated or expired); its id answers 410 until swept."""
        record.status = status
        record.expires_at = self.now() + self.config.uploads.tombstone_ttl

    async def reject(self, record: UploadRecord, reason: str) -> None:
        """Refuse a complete upload whose bytes are not what its creation
        declared: they are discarded, never committed; its id answers 460
        with ``reason`` until the tombstone is swept. Lock held."""
        if record.kind is not Kind.ASSEMBLY:
            try:
                await self.bucket(record.bucket).backend.discard_stream(self.stream(record))
            except BackendError:
                log.warning("discarding refused upload %s failed", record.id, exc_info=True)
        record.extra[digests.REJECTED] = reason
        digests.forget(record)
        self.tombstone(record, Status.TERMINATED)
        await self.save(record)
        log.warning("upload %s (%s) refused: %s", record.id, record.protocol, reason)
        self.events.emit("digest-mismatch", record)
        raise digests.DigestMismatch(reason)

    # -- locks -------------------------------------------------------------------------
    def object_lock(
        self, bucket: str, key: str, timeout: float | None = None
    ) -> AbstractAsyncContextManager[Lease]:
        """Held while deciding whether to replace the object ``key`` and doing
        it; the sweeper holds it to delete an expired object."""
        return self.locks.hold(f"object:{bucket}/{key}", timeout)

    # -- the backend ---------------------------------------------------------------------
    def stream(self, record: UploadRecord) -> StreamInfo:
        """What the backend needs to know of ``record``'s stream."""
        # A plain upload writes towards its final key so committing moves no
        # bytes — but where a pre-finish hook must approve it first or the key
        # must still be free when it finishes (insert-only), no write may make
        # the object before then (S3 makes a small one as its last bytes arrive).
        # An upload named by its etag has a keyless stream, its key decided once sealed.
        key = None
        if (
            record.kind is Kind.UPLOAD
            and record.key is not None
            and not object_meta.named_by_etag(record)
        ):
            key = self.bucket(record.bucket).backend_key(record.key)
        stream = record.stream(key)
        approved = self.approve is None or record.extra.get(APPROVED) is True
        # a declared digest is checked when the last byte arrives: no object before
        stream.early_object = (
            approved and not object_meta.is_insert_only(record) and not digests.declared(record)
        )
        stream.if_absent = object_meta.is_if_absent(record)
        stream.one_write = object_meta.is_one_write(record)
        if key is not None:
            meta = object_meta.of(record)
            stream.content_type = meta.content_type if meta is not None else None
            stream.delete_at = meta.delete_at if meta is not None else None
        return stream

    def check_length(self, length: int | None, b: Bucket) -> None:
        max_size = self.config.server.max_upload_size
        if length is None:
            return
        if length < 0:
            raise BadRequest("negative length")
        if max_size and length > max_size:
            raise TooLarge(f"the upload exceeds the maximum size of {max_size} bytes")
        limit = b.backend.limits.max_object_size
        if limit and length > limit:
            raise TooLarge(f"the storage accepts objects up to {limit} bytes")

    # -- the commit point -------------------------------------------------------------
    async def approve_commit(
        self, record: UploadRecord, bucket: str, key: str, parts: Sequence[UploadRecord] = ()
    ) -> None:
        """THE point before an upload becomes the object ``bucket/key``
        (a stream committed, a part committed, an assembly made); the lock of
        ``record`` is held. ``approve`` (the pre-finish hook) may refuse with
        ``HookRejected``: then the object is never made and the bytes of
        ``record`` and ``parts`` are discarded (their ids answer 410).
        ``ServiceUnavailable`` (hook down) leaves everything as it was, so a
        later request finishes the upload. A record approved before its
        bytes were stored (``APPROVED``, ``Uploads.put``) is not asked again.
        Once approved, the digest index forgets the object at ``key``
        (``instant.py``): it is being replaced."""
        try:
            if self.approve is not None and record.extra.get(APPROVED) is not True:
                await self.approve(record, bucket, key)
        except HookRejected:
            await self._refuse(record, parts)
            raise
        await self.state.index_remove(bucket, key)

    async def finished(self, record: UploadRecord) -> None:
        """``record`` became its object and is saved: index it by its digest,
        then tell the listeners and webhooks (``post-finish``)."""
        await digest_index.index(self.state, record)
        self.events.emit("post-finish", record)

    @contextlib.asynccontextmanager
    async def committing(
        self, record: UploadRecord, bucket: str, key: str, parts: Sequence[UploadRecord] = ()
    ) -> AsyncIterator[None]:
        """Around making ``record`` the object ``bucket/key``: approved first
        (``approve_commit``); for an insert-only record the key must be free,
        checked and kept so under the object lock until the object is made —
        else ``ObjectExists``, and the bytes are discarded as for a refusal."""
        await self.approve_commit(record, bucket, key, parts)
        if not object_meta.is_insert_only(record):
            yield
            return
        async with self.object_lock(bucket, key):
            b = self.bucket(bucket)
            with backend_errors():
                taken = await b.backend.stat(b.backend_key(key)) is not None
            if taken:
                log.warning(
                    "upload %s refused at its finish: an object was made at %s/%s since it "
                    "began and its put policy is insert-only; its bytes are discarded",
                    record.id,
                    bucket,
                    key,
                )
                await self._refuse(record, parts)
                raise ObjectExists(f"file exists: {key}")
            yield

    async def _refuse(self, record: UploadRecord, parts: Sequence[UploadRecord]) -> None:
        """``record`` will never be an object: its bytes (and its parts')
        are discarded and their ids answer 410."""
        for r in (record, *parts):
            if r.kind is not Kind.ASSEMBLY:
                b = self.bucket(r.bucket)
                try:
                    await b.backend.discard_stream(self.stream(r))
                except BackendError:
                    log.warning("discarding refused upload %s failed", r.id, exc_info=True)
            self.tombstone(r, Status.TERMINATED)
            await self.state.save(r)

    async def commit_stream(self, b: Bucket, record: UploadRecord, backend_key: str) -> None:
        """Make ``record``'s complete stream the object at ``backend_key``."""
        with backend_errors():
            try:
                await b.backend.commit(self.stream(record), backend_key, object_meta.stored(record))
            except BackendNotFound:
                # committed before a crash, not yet saved: the object is there
                info = await b.backend.stat(backend_key)
                if info is None or info.size != record.offset:
                    raise

    async def drop_complete(self, part_id: str) -> None:
        """A complete part no object needs any more: its storage is
        discarded and its id answers 410. Its lock is taken here."""
        await self.drop_completes([part_id])

    async def drop_completes(self, part_ids: Sequence[str]) -> None:
        """``drop_complete`` of several parts: their locks held together
        (taken in order), their storage discarded by one call to each
        bucket's backend (S3: one listing of their stray pieces)."""
        ids = sorted(set(part_ids))
        async with contextlib.AsyncExitStack() as held:
            for part_id in ids:
                await held.enter_async_context(self.locks.hold(part_id))
            found = await self.state.get_many(ids)
            current = [r for r in found if r is not None and r.status is Status.COMPLETE]
            by_bucket: dict[str, list[UploadRecord]] = {}
            for record in current:
                by_bucket.setdefault(record.bucket, []).append(record)
            for bucket, records in by_bucket.items():
                with backend_errors():
                    backend = self.bucket(bucket).backend
                    await backend.discard_streams([self.stream(r) for r in records])
            for record in current:
                self.tombstone(record, Status.EXPIRED)
                await self.state.save(record)

    # -- after the answer ----------------------------------------------------------------
    def later(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` after the current request is answered."""
        task = asyncio.get_running_loop().create_task(work)
        self._after_answer.add(task)
        task.add_done_callback(self._after_answer.discard)

    async def settle(self) -> None:
        """Wait for the clean-up started after answers (at shutdown, in tests)."""
        while self._after_answer:
            await asyncio.gather(*self._after_answer, return_exceptions=True)
