"""UploadService: the protocol-independent core (DESIGN.md §1–§4).

Protocols translate requests into these calls and render the results:

* ``create(...)`` — a new stream: ``Kind.UPLOAD`` becomes the object at its key
  when its last byte arrives; ``Kind.PART`` waits to be assembled.
* ``write(id, offset, body, ...)`` — append at ``offset`` under the upload's
  lock; the offset is saved (compare-and-set) only after the backend stored
  the bytes; a body cut short keeps what arrived.
* ``create_assembly(...)`` / ``assemble_now(...)`` — an object made of finished
  parts, now or as soon as its parts finish (tus concatenation-unfinished).
* ``commit_part(...)`` — one finished part becomes an object under a key
  (Qiniu form upload, single-block mkfile). With ``meta`` (``ObjectMeta``),
  here and in ``create_assembly``, the object gets a content type and a
  lifetime (``object_meta.py``: the sweeper deletes it where the store cannot).
* ``create_session`` / ``update`` / ``close_session`` / ``find`` / ``forget``,
  ``lock`` / ``object_lock`` — records without a stream and named locks, for a
  protocol's own sessions (Qiniu v2 uploadIds).
* ``annotate(id, extra)`` — protocol bookkeeping merged into a record.
* ``terminate(id)``, ``get(id)``, ``read(...)``, ``read_stream(...)``,
  ``object_url(...)``.

Errors are those of ``gateway.core.errors``; backend errors are translated
here (``BackendUnavailable`` → ``ServiceUnavailable``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from backends.base import Backend, Capability, ObjectInfo, ObjectMeta, StreamInfo, WriteResult
from backends.concurrency import bounded
from backends.errors import BackendError, BackendUnavailable
from backends.errors import NotFound as BackendNotFound
from gateway.config import GatewayConfig
from gateway.core import object_meta
from gateway.core.body import GuardedBody, Hasher
from gateway.core.checksums import Checksum
from gateway.core.errors import (
    BadRequest,
    ChecksumMismatch,
    Forbidden,
    Locked,
    NotReady,
    OffsetMismatch,
    ServiceUnavailable,
    TooLarge,
    UploadError,
    UploadGone,
    UploadNotFound,
)
from gateway.core.events import Events
from gateway.core.locks import Lease, LockManager
from gateway.core.records import Kind, Status, UploadRecord, new_upload_id
from gateway.core.state.base import StateStore

log = logging.getLogger(__name__)

_CONCAT_WAIT = "concat-wait"  # kv: part id → JSON list of assembly ids waiting for it
_CONSUME_CONCURRENCY = 8  # assembled parts discarded at once


@dataclass(frozen=True)
class Bucket:
    name: str
    backend: Backend
    prefix: str

    def backend_key(self, key: str) -> str:
        return self.prefix + key


@contextlib.contextmanager
def _backend_errors() -> Any:
    """Translate backend failures at the core's edge."""
    try:
        yield
    except BackendUnavailable as exc:
        raise ServiceUnavailable(str(exc), retry_after=exc.retry_after) from exc
    except BackendNotFound as exc:
        raise UploadGone(f"the stored data is gone: {exc}") from exc
    except BackendError as exc:
        raise ServiceUnavailable(f"storage error: {exc}") from exc


class UploadService:
    def __init__(
        self,
        config: GatewayConfig,
        state: StateStore,
        locks: LockManager,
        backends: dict[str, Backend],
        events: Events,
    ) -> None:
        self.config = config
        self.state = state
        self.locks = locks
        self.backends = backends
        self.events = events
        self.buckets = {
            name: Bucket(name, backends[b.backend], b.prefix) for name, b in config.buckets.items()
        }
        events.url_for = self._hook_url
        #: clean-up started after a request was answered (``settle`` awaits it)
        self._after_answer: set[asyncio.Task[Any]] = set()

    async def _hook_url(self, record: UploadRecord) -> str | None:
        if record.key is None:
            return None
        server = self.config.server
        base = server.public_url or f"http://{server.host}:{server.port}"
        return await self.object_url(record.bucket, record.key, base)

    # -- lookup ----------------------------------------------------------------
    def bucket(self, name: str) -> Bucket:
        try:
            return self.buckets[name]
        except KeyError:
            raise UploadNotFound(f"no such bucket {name!r}") from None

    def capabilities(self, bucket: str) -> frozenset[Capability]:
        return self.bucket(bucket).backend.capabilities

    async def get(self, upload_id: str) -> UploadRecord:
        """The record, or ``UploadNotFound`` / ``UploadGone``."""
        record = await self.state.get(upload_id)
        if record is None:
            raise UploadNotFound("no such upload")
        if record.status in (Status.TERMINATED, Status.EXPIRED):
            raise UploadGone(f"the upload was {record.status.value}")
        if (
            record.status in (Status.ACTIVE, Status.COMPLETE)
            and record.expires_at is not None
            and record.expires_at < time.time()
        ):
            raise UploadGone("the upload expired")
        return record

    async def status(self, upload_id: str) -> UploadRecord:
        """Like ``get``, finishing an upload whose last write was saved but
        whose finishing step was cut short (a crash in between)."""
        record = await self.get(upload_id)
        if (
            record.status is Status.ACTIVE
            and record.kind is not Kind.ASSEMBLY
            and record.is_complete
        ):
            async with self.locks.hold(upload_id):
                record = await self.get(upload_id)
                if record.status is Status.ACTIVE and record.is_complete:
                    record = await self._finish(record)
            record = await self._after_unlock(record)
        return record

    async def _save(self, record: UploadRecord) -> None:
        """Compare-and-set save; a lost race is a retryable 503, never a silent overwrite."""
        record.updated_at = time.time()
        if not await self.state.save(record):
            raise ServiceUnavailable("the upload changed under this request; retry")

    def _mark_finished(self, record: UploadRecord) -> None:
        record.status = Status.FINISHED
        record.expires_at = None

    def _expiry(self) -> float:
        return time.time() + self.config.uploads.expire_after

    # -- creation ----------------------------------------------------------------
    async def create(
        self,
        *,
        protocol: str,
        bucket: str,
        key: str | None,
        length: int | None,
        kind: Kind = Kind.UPLOAD,
        metadata: dict[str, str] | None = None,
        concat: str | None = None,
        extra: dict[str, Any] | None = None,
        upload_id: str | None = None,
    ) -> UploadRecord:
        """Create an empty stream (no lock needed: nobody knows the id yet)."""
        b = self.bucket(bucket)
        self._check_length(length, b)
        now = time.time()
        record = UploadRecord(
            id=upload_id or new_upload_id(),
            protocol=protocol,
            kind=kind,
            bucket=bucket,
            key=key,
            length=length,
            metadata=dict(metadata or {}),
            concat=concat,
            created_at=now,
            updated_at=now,
            expires_at=self._expiry(),
            extra=dict(extra or {}),
        )
        with _backend_errors():
            record.backend_state = await b.backend.create_stream(self._stream(record))
        await self.state.create(record)
        self.events.emit("post-create", record)
        if record.length == 0:
            async with self.locks.hold(record.id):
                record = await self._finish(record)
            record = await self._after_unlock(record)
        return record

    def _check_length(self, length: int | None, b: Bucket) -> None:
        max_size = self.config.server.max_upload_size
        if length is None:
            if Capability.DEFERRED_LENGTH not in b.backend.capabilities:
                raise BadRequest("this storage needs the length up front")
            return
        if length < 0:
            raise BadRequest("negative length")
        if max_size and length > max_size:
            raise TooLarge(f"the upload exceeds the maximum size of {max_size} bytes")
        limit = b.backend.limits.max_object_size
        if limit and length > limit:
            raise TooLarge(f"the storage accepts objects up to {limit} bytes")

    def _stream(self, record: UploadRecord) -> StreamInfo:
        # A plain upload writes towards its final key so committing moves no bytes.
        key = None
        if record.kind is Kind.UPLOAD and record.key is not None:
            key = self.bucket(record.bucket).backend_key(record.key)
        stream = record.stream(key)
        if key is not None:
            meta = object_meta.of(record)
            stream.content_type = meta.content_type if meta is not None else None
        return stream

    # -- writing -------------------------------------------------------------------
    async def write(
        self,
        upload_id: str,
        offset: int,
        body: AsyncIterator[bytes],
        *,
        checksum: Checksum | None = None,
        declare_length: int | None = None,
        content_length: int | None = None,
        hashers: list[Hasher] | None = None,
        require_complete_body: bool = False,
    ) -> UploadRecord:
        """Append ``body`` at ``offset``; return the saved record.

        ``declare_length`` sets a deferred length (once). ``content_length``
        lets a request that would overrun the length fail before any byte is
        read. ``require_complete_body`` (Qiniu chunks) discards a body cut short
        instead of keeping its bytes."""
        async with self.locks.hold(upload_id) as lease:
            record = await self._write_locked(
                upload_id,
                offset,
                body,
                lease,
                checksum,
                declare_length,
                content_length,
                hashers,
                require_complete_body,
            )
        return await self._after_unlock(record)

    async def _write_locked(
        self,
        upload_id: str,
        offset: int,
        body: AsyncIterator[bytes],
        lease: Lease,
        checksum: Checksum | None,
        declare_length: int | None,
        content_length: int | None,
        hashers: list[Hasher] | None,
        require_complete_body: bool,
    ) -> UploadRecord:
        record = await self.get(upload_id)
        if record.kind is Kind.ASSEMBLY:
            raise Forbidden("an assembled upload cannot be written to")
        if offset != record.offset:
            raise OffsetMismatch(record.offset)
        if record.status is not Status.ACTIVE:  # complete: nothing more fits
            if content_length == 0:
                return record
            raise TooLarge("the upload is already complete")
        b = self.bucket(record.bucket)
        if declare_length is not None:
            if record.length is not None and record.length != declare_length:
                raise BadRequest("the upload length cannot change")
            if declare_length < record.offset:
                raise BadRequest("the declared length is below the current offset")
            self._check_length(declare_length, b)
            record.length = declare_length
        limit = self._remaining(record)
        if content_length is not None and limit is not None and content_length > limit:
            raise TooLarge("the body would exceed the upload length")
        if record.status is Status.ACTIVE and record.is_complete:
            return await self._finish(record)
        if checksum is not None and Capability.ROLLBACK not in b.backend.capabilities:
            raise BadRequest("checksums are not supported by this storage")
        all_hashers: list[Hasher] = list(hashers or [])
        if checksum is not None:
            all_hashers.append(checksum.hasher)
        guarded = GuardedBody(body, limit=limit, lease=lease, hashers=all_hashers)
        result = await self._write_backend(b.backend, record, guarded, content_length)
        refuse = self._refusal(guarded, checksum, require_complete_body)
        if refuse is not None:
            if result.rollback is not None and result.offset > record.offset:
                with _backend_errors():
                    await result.rollback()
            raise refuse
        return await self._commit_write(record, result)

    def _remaining(self, record: UploadRecord) -> int | None:
        if record.length is not None:
            return record.length - record.offset
        max_size = self.config.server.max_upload_size
        return max_size - record.offset if max_size else None

    async def _write_backend(
        self, backend: Backend, record: UploadRecord, body: GuardedBody, incoming: int | None
    ) -> WriteResult:
        stream = self._stream(record)
        stream.incoming = incoming
        try:
            return await backend.write(stream, aiter(body))
        except BackendUnavailable as exc:
            if exc.partial is not None and exc.partial.offset > record.offset:
                # keep what the store acknowledged before it failed
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._save_write(record, exc.partial))
            raise ServiceUnavailable(str(exc), retry_after=exc.retry_after) from exc
        except BackendNotFound as exc:
            raise UploadGone(f"the stored data is gone: {exc}") from exc
        except BackendError as exc:
            raise ServiceUnavailable(f"storage error: {exc}") from exc

    @staticmethod
    def _refusal(
        body: GuardedBody, checksum: Checksum | None, require_complete: bool
    ) -> Exception | None:
        if body.exceeded:
            return TooLarge("the body exceeds the upload length")
        if checksum is not None or require_complete:
            if body.yielded_lock:
                return Locked("interrupted by another request for this upload")
            if body.interrupted:
                return BadRequest("the body was cut short")
            try:
                if checksum is not None and not checksum.matches():
                    return ChecksumMismatch("checksum mismatch")
            except UploadError as exc:  # a malformed or missing trailer
                return exc
        return None

    async def _save_write(self, record: UploadRecord, result: WriteResult) -> None:
        record.offset = result.offset
        record.backend_state = result.state
        record.expires_at = self._expiry()
        await self._save(record)
        if result.after_commit is not None:
            try:
                await result.after_commit()
            except Exception:  # leftovers are swept later; the write stands
                log.warning("cleanup after write of %s failed", record.id, exc_info=True)

    async def _commit_write(self, record: UploadRecord, result: WriteResult) -> UploadRecord:
        # shielded: a cancelled request still saves what the backend holds
        await asyncio.shield(self._save_write(record, result))
        if record.is_complete:
            record = await asyncio.shield(self._finish(record))
        return record

    # -- finishing -------------------------------------------------------------------
    async def _finish(self, record: UploadRecord) -> UploadRecord:
        """Seal a complete stream; an upload becomes its object. Lock held."""
        b = self.bucket(record.bucket)
        with _backend_errors():
            record.backend_state = await b.backend.finish_stream(self._stream(record))
            if record.kind is Kind.UPLOAD:
                assert record.key is not None
                await self._commit_stream(b, record, b.backend_key(record.key))
        if record.kind is Kind.UPLOAD:
            self._mark_finished(record)
        else:
            record.status = Status.COMPLETE
        await self._save(record)
        if record.status is Status.FINISHED:
            self.events.emit("post-finish", record)
        return record

    async def _after_unlock(self, record: UploadRecord) -> UploadRecord:
        """Work that needs other uploads' locks, done once this one is released."""
        if record.kind is Kind.PART and record.status is Status.COMPLETE:
            await self._wake_assemblies(record.id)
        return record

    async def _commit_stream(self, b: Bucket, record: UploadRecord, backend_key: str) -> None:
        try:
            await b.backend.commit(self._stream(record), backend_key, object_meta.of(record))
        except BackendNotFound:
            # committed before a crash, not yet saved: the object is there
            info = await b.backend.stat(backend_key)
            if info is None or info.size != record.offset:
                raise

    # -- assemblies --------------------------------------------------------------------
    async def create_assembly(
        self,
        *,
        protocol: str,
        bucket: str,
        key: str,
        parts: Sequence[str],
        metadata: dict[str, str] | None = None,
        concat: str | None = None,
        allow_unfinished: bool = True,
        extra: dict[str, Any] | None = None,
        upload_id: str | None = None,
        meta: ObjectMeta | None = None,
    ) -> UploadRecord:
        """An object made of ``parts`` (ids of ``Kind.PART`` streams) in order;
        assembled now if every part is complete, else when the last one is."""
        b = self.bucket(bucket)
        if Capability.ASSEMBLE not in b.backend.capabilities:
            raise BadRequest("this storage cannot assemble uploads")
        if not parts:
            raise BadRequest("an assembly needs at least one part")
        records = [await self.get(p) for p in parts]
        lengths: list[int] = []
        for part in records:
            if part.kind is not Kind.PART or part.bucket != bucket:
                raise BadRequest(f"upload {part.id} cannot be part of this assembly")
            if part.status is not Status.COMPLETE and not allow_unfinished:
                raise BadRequest(f"upload {part.id} is not finished")
            if part.length is not None:
                lengths.append(part.length)
        length = sum(lengths) if len(lengths) == len(records) else None
        self._check_length(length if length is not None else 0, b)
        now = time.time()
        record = UploadRecord(
            id=upload_id or new_upload_id(),
            protocol=protocol,
            kind=Kind.ASSEMBLY,
            bucket=bucket,
            key=key,
            length=length,
            metadata=dict(metadata or {}),
            concat=concat,
            parts=list(parts),
            created_at=now,
            updated_at=now,
            expires_at=self._expiry(),
            extra=object_meta.with_meta(extra, meta),
        )
        await self.state.create(record)
        waiting = [p.id for p in records if p.status is not Status.COMPLETE]
        for part_id in waiting:
            await self._add_waiter(part_id, record.id)
        if not waiting:
            record = await self.assemble_now(record.id)
        return record

    async def assemble_now(self, assembly_id: str, *, consume_parts: bool = True) -> UploadRecord:
        """Assemble if every part is complete (idempotent); return the record."""
        async with self.locks.hold(assembly_id):
            record = await self.get(assembly_id)
            if record.status is not Status.ACTIVE:
                return record
            parts = [await self.get(p) for p in record.parts]
            if any(p.status is not Status.COMPLETE for p in parts):
                return record
            b = self.bucket(record.bucket)
            assert record.key is not None
            with _backend_errors():
                info = await b.backend.assemble(
                    [self._stream(p) for p in parts],
                    b.backend_key(record.key),
                    object_meta.of(record),
                )
            record.length = record.offset = info.size
            self._mark_finished(record)
            await self._schedule_deletion(b, record)
            await self._save(record)
        self.events.emit("post-finish", record)
        if consume_parts:
            # after the answer, a few at a time: each costs the store a request
            # or two, and the object no longer needs them (a part left behind
            # by a crash expires and the sweeper discards it)
            self._later(bounded(parts, self._consume, _CONSUME_CONCURRENCY))
        return record

    def _later(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._after_answer.add(task)
        task.add_done_callback(self._after_answer.discard)

    async def settle(self) -> None:
        """Wait for the clean-up started after answers (at shutdown, in tests)."""
        while self._after_answer:
            await asyncio.gather(*self._after_answer, return_exceptions=True)

    async def commit_part(
        self,
        part_id: str,
        key: str,
        *,
        bucket: str | None = None,
        metadata: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        meta: ObjectMeta | None = None,
    ) -> UploadRecord:
        """Make one complete part the object ``key`` (its storage is consumed).

        ``bucket`` may name another bucket on the same backend (a Qiniu form
        file stored before its token named the bucket). The part's record
        becomes the object's (FINISHED, ``key``, ``metadata``, ``extra``
        merged) and ``post-finish`` is emitted, as for an assembly."""
        async with self.locks.hold(part_id):
            record = await self.get(part_id)
            if record.status is not Status.COMPLETE:
                raise NotReady("the part is not complete")
            target = self.bucket(bucket or record.bucket)
            if target.backend is not self.bucket(record.bucket).backend:
                raise BadRequest(f"bucket {target.name!r} is on another backend")
            object_meta.put(record, meta)
            with _backend_errors():
                await self._commit_stream(target, record, target.backend_key(key))
            record.bucket = target.name
            record.key = key
            record.metadata.update(metadata or {})
            record.extra.update(extra or {})
            self._mark_finished(record)
            await self._schedule_deletion(target, record)
            await self._save(record)
        self.events.emit("post-finish", record)
        return record

    async def _consume(self, part: UploadRecord) -> None:
        """Discard an assembled part's storage; its id then answers 410."""
        try:
            async with self.locks.hold(part.id):
                current = await self.state.get(part.id)
                if current is None:
                    return
                with _backend_errors():
                    await self.bucket(current.bucket).backend.discard_stream(self._stream(current))
                current.status = Status.EXPIRED
                current.expires_at = time.time() + self.config.uploads.tombstone_ttl
                await self.state.save(current)
        except Exception:  # the sweeper removes it later
            log.warning("could not discard assembled part %s", part.id, exc_info=True)

    async def _add_waiter(self, part_id: str, assembly_id: str) -> None:
        async with self.locks.hold(f"{_CONCAT_WAIT}:{part_id}"):
            raw = await self.state.kv_get(_CONCAT_WAIT, part_id)
            ids = json.loads(raw) if raw else []
            ids.append(assembly_id)
            await self.state.kv_set(_CONCAT_WAIT, part_id, json.dumps(ids))
        # the part may have completed meanwhile
        part = await self.state.get(part_id)
        if part is not None and part.status is Status.COMPLETE:
            await self._wake_assemblies(part_id)

    async def _wake_assemblies(self, part_id: str) -> None:
        raw = await self.state.kv_get(_CONCAT_WAIT, part_id)
        if not raw:
            return
        for assembly_id in json.loads(raw):
            try:
                await self.assemble_now(assembly_id)
            except Exception:
                log.warning("assembly %s failed", assembly_id, exc_info=True)

    async def annotate(self, upload_id: str, extra: dict[str, Any]) -> UploadRecord:
        """Merge protocol bookkeeping into a record's ``extra`` (under its lock);
        e.g. the digests of a Qiniu v2 part, known once its bytes have passed."""
        async with self.locks.hold(upload_id):
            record = await self.get(upload_id)
            record.extra.update(extra)
            await self._save(record)
        return record

    # -- termination ---------------------------------------------------------------------
    async def terminate(self, upload_id: str) -> None:
        async with self.locks.hold(upload_id):
            record = await self.get(upload_id)
            await self._discard(record)
            record.status = Status.TERMINATED
            record.expires_at = time.time() + self.config.uploads.tombstone_ttl
            await self.state.save(record)
        self.events.emit("post-terminate", record)

    async def _discard(self, record: UploadRecord) -> None:
        b = self.bucket(record.bucket)
        with _backend_errors():
            if record.status is Status.FINISHED and record.key is not None:
                await b.backend.delete_object(b.backend_key(record.key))
            elif record.kind is not Kind.ASSEMBLY:
                await b.backend.discard_stream(self._stream(record))

    async def expire(self, upload_id: str) -> None:
        """Sweeper: drop an expired upload's storage, or a tombstone's record."""
        async with self.locks.hold(upload_id, timeout=1.0):
            record = await self.state.get(upload_id)
            if record is None or record.expires_at is None or record.expires_at > time.time():
                return
            if record.status in (Status.TERMINATED, Status.EXPIRED):
                await self.state.delete(upload_id)
                await self.state.kv_delete(_CONCAT_WAIT, upload_id)
                return
            if record.status is Status.FINISHED:  # its object's lifetime ended
                await self._expire_object(record)
            else:
                await self._discard(record)
            record.status = Status.EXPIRED
            record.expires_at = time.time() + self.config.uploads.tombstone_ttl
            await self.state.save(record)

    async def _schedule_deletion(self, b: Bucket, record: UploadRecord) -> None:
        """An object with a lifetime the store does not enforce: its finished
        record expires then, and the sweeper deletes the object (``expire``)."""
        meta = object_meta.of(record)
        if meta is None or meta.delete_at is None or record.key is None:
            return
        if Capability.OBJECT_EXPIRY in b.backend.capabilities:
            return  # the store deletes it itself
        try:
            info = await b.backend.stat(b.backend_key(record.key))
        except BackendError:  # the object is made: expire it by its size alone
            log.warning("no version for %s; its expiry compares sizes", record.id, exc_info=True)
            info = None
        object_meta.schedule(record, meta, info)

    async def _expire_object(self, record: UploadRecord) -> None:
        """Delete the object of an expired finished record, unless a newer
        upload replaced it since (then the object is not this record's)."""
        if record.key is None:
            return
        b = self.bucket(record.bucket)
        key = b.backend_key(record.key)
        async with self.object_lock(record.bucket, record.key, timeout=1.0):
            with _backend_errors():
                info = await b.backend.stat(key)
                if info is not None and object_meta.is_same(record, info):
                    await b.backend.delete_object(key)

    # -- for protocols: locks and records without a stream ---------------------------------
    def lock(self, name: str, timeout: float | None = None) -> AbstractAsyncContextManager[Lease]:
        """A lock on any name, for a protocol's own critical sections."""
        return self.locks.hold(name, timeout)

    def object_lock(
        self, bucket: str, key: str, timeout: float | None = None
    ) -> AbstractAsyncContextManager[Lease]:
        """Held while deciding whether to replace the object ``key`` and doing
        it; the sweeper holds it to delete an expired object."""
        return self.locks.hold(f"object:{bucket}/{key}", timeout)

    async def find(self, upload_id: str) -> UploadRecord | None:
        """The record whatever its status (no expiry checks), or None."""
        return await self.state.get(upload_id)

    async def create_session(
        self,
        *,
        protocol: str,
        bucket: str,
        key: str | None,
        ttl: float,
        extra: dict[str, Any] | None = None,
    ) -> UploadRecord:
        """A record holding no bytes for a protocol's session (a Qiniu v2
        uploadId): an ``ASSEMBLY`` without parts, swept ``ttl`` from now."""
        self.bucket(bucket)
        now = time.time()
        record = UploadRecord(
            id=new_upload_id(),
            protocol=protocol,
            kind=Kind.ASSEMBLY,
            bucket=bucket,
            key=key,
            length=None,
            created_at=now,
            updated_at=now,
            expires_at=now + ttl,
            extra=dict(extra or {}),
        )
        await self.state.create(record)
        return record

    async def update(
        self, upload_id: str, change: Callable[[UploadRecord], bool]
    ) -> UploadRecord | None:
        """Apply ``change`` to the record under its lock, saving it if
        ``change`` returns True; None if there is no such record."""
        async with self.locks.hold(upload_id):
            record = await self.state.get(upload_id)
            if record is not None and change(record):
                await self._save(record)
        return record

    async def close_session(self, upload_id: str) -> None:
        """End an active session record: its id answers as gone from now on."""

        def close(record: UploadRecord) -> bool:
            if record.status is not Status.ACTIVE:
                return False
            record.status = Status.EXPIRED
            record.expires_at = time.time() + self.config.uploads.tombstone_ttl
            return True

        await self.update(upload_id, close)

    async def forget(self, upload_id: str) -> None:
        """Drop a record and its stored bytes, so that its id can be used again
        (a re-uploaded Qiniu v2 part). Call it holding a lock that keeps the id
        from being created meanwhile."""
        if await self.state.get(upload_id) is None:
            return
        with contextlib.suppress(UploadError):
            await self.terminate(upload_id)
        await self.state.delete(upload_id)

    # -- reading ---------------------------------------------------------------------------
    async def stat_object(self, bucket: str, key: str) -> ObjectInfo | None:
        b = self.bucket(bucket)
        with _backend_errors():
            return await b.backend.stat(b.backend_key(key))

    async def read(
        self, bucket: str, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        b = self.bucket(bucket)
        try:
            async for chunk in b.backend.read(b.backend_key(key), start, end):
                yield chunk
        except BackendNotFound as exc:
            raise UploadNotFound("no such object") from exc
        except BackendError as exc:
            raise ServiceUnavailable(f"storage error: {exc}") from exc

    async def read_stream(
        self, upload_id: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` a stream holds so far (``Capability.READ_STREAM``)."""
        record = await self.get(upload_id)
        b = self.bucket(record.bucket)
        if Capability.READ_STREAM not in b.backend.capabilities:
            raise BadRequest("this storage cannot read unfinished uploads back")
        try:
            async for chunk in b.backend.read_stream(self._stream(record), start, end):
                yield chunk
        except BackendNotFound as exc:
            raise UploadGone(f"the stored data is gone: {exc}") from exc
        except BackendError as exc:
            raise ServiceUnavailable(f"storage error: {exc}") from exc

    async def delete_object(self, bucket: str, key: str) -> None:
        b = self.bucket(bucket)
        with _backend_errors():
            await b.backend.delete_object(b.backend_key(key))

    async def object_url(self, bucket: str, key: str, base_url: str) -> str:
        """The URL business services fetch the object from."""
        b = self.bucket(bucket)
        with _backend_errors():
            url = await b.backend.object_url(b.backend_key(key), int(self.config.uploads.url_ttl))
        if url:
            return url
        return f"{base_url}/objects/{quote(bucket, safe='')}/{quote(key, safe='/')}"
