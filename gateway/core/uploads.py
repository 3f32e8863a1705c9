"""Streams: create one, append to it at an offset, finish it.

A ``Kind.UPLOAD`` stream becomes the object at its key when its last byte
arrives; a ``Kind.PART`` stream is sealed (``COMPLETE``) and waits to be
assembled. The offset is saved (compare-and-set) only after the backend
stored the bytes; a body cut short keeps what arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

from backends.base import Backend, WriteResult
from backends.errors import BackendUnavailable
from gateway.core import digests, object_meta, stream_digests
from gateway.core.body import GuardedBody, Hasher
from gateway.core.checksums import Checksum
from gateway.core.digest_index import is_instant
from gateway.core.errors import (
    BadRequest,
    ChecksumMismatch,
    Forbidden,
    Locked,
    OffsetMismatch,
    TooLarge,
    UploadError,
)
from gateway.core.events import PART_COMPLETE
from gateway.core.expiry import schedule_deletion
from gateway.core.instant import Instant
from gateway.core.ledger import APPROVED, Bucket, Ledger, backend_errors
from gateway.core.locks import Lease
from gateway.core.partials import PartRefs, max_total, too_large
from gateway.core.records import Kind, RecordCheck, Status, UploadRecord, new_upload_id

log = logging.getLogger(__name__)


def refusal(
    body: GuardedBody, checksum: Checksum | None, require_complete: bool
) -> Exception | None:
    """Why the bytes of ``body`` must not stand, if they must not."""
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


class Uploads:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._refs = PartRefs(ledger.state, ledger.locks)
        self._instant = Instant(ledger)

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
        ledger = self.ledger
        b = ledger.bucket(bucket)
        record = self._new(protocol, bucket, key, length, kind, metadata, concat, extra, upload_id)
        sources = await self._instant.find(record)
        if sources:  # the bucket may hold these bytes already: no stream yet
            await ledger.create(record)
            ledger.events.emit("post-create", record)
            if await self._instant.complete(record, sources):
                return record
            with backend_errors():
                record.backend_state = await b.backend.create_stream(ledger.stream(record))
            await ledger.save(record)
            return record
        with backend_errors():
            record.backend_state = await b.backend.create_stream(ledger.stream(record))
        await ledger.create(record)
        ledger.events.emit("post-create", record)
        if record.length == 0:
            async with ledger.locks.hold(record.id):
                record = await self._finish(record)
            record = await self._after_unlock(record)
        return record

    async def put(
        self,
        *,
        protocol: str,
        bucket: str,
        key: str,
        length: int,
        body: AsyncIterator[bytes],
        metadata: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        hashers: list[Hasher] | None = None,
        if_absent: bool = False,
    ) -> UploadRecord:
        """The object ``key`` from ``length`` bytes the caller already holds
        (a small form file), in one write; with ``if_absent`` (only where
        ``creates_if_absent``) only if the key holds no object, else
        ``ObjectExists`` and nothing is stored. The pre-finish hook is asked
        before any byte is stored, so the stream is written on its key
        whatever the hooks (S3: one PutObject, no copy); a refusal stores
        nothing; a failed write drops what was stored (its id answers 410)."""
        ledger = self.ledger
        b = ledger.bucket(bucket)
        extra = object_meta.one_write({**(extra or {}), APPROVED: True})
        if if_absent:
            extra = object_meta.if_absent(extra)
        record = self._new(protocol, bucket, key, length, Kind.UPLOAD, metadata, None, extra, None)
        if ledger.approve is not None:
            await ledger.approve(record, bucket, key)
        with backend_errors():
            record.backend_state = await b.backend.create_stream(ledger.stream(record))
        await ledger.create(record)
        ledger.events.emit("post-create", record)
        try:
            return await self.write(
                record.id, 0, body, content_length=length, hashers=hashers,
                require_complete_body=True, known=record,
            )  # fmt: skip
        except BaseException:
            await asyncio.shield(self._abandon(record.id))
            raise

    async def _abandon(self, upload_id: str) -> None:
        """Drop a ``put`` that failed: its bytes and its record (410)."""
        ledger = self.ledger
        try:
            async with ledger.locks.hold(upload_id):
                record = await ledger.state.get(upload_id)
                if record is None or record.status is not Status.ACTIVE:
                    return
                with backend_errors():
                    await ledger.bucket(record.bucket).backend.discard_stream(ledger.stream(record))
                ledger.tombstone(record, Status.TERMINATED)
                await ledger.save(record)
        except Exception as exc:  # the sweeper drops it at its expiry
            log.warning("could not drop the failed upload %s (%s)", upload_id, exc)

    def _new(
        self,
        protocol: str,
        bucket: str,
        key: str | None,
        length: int | None,
        kind: Kind,
        metadata: dict[str, str] | None,
        concat: str | None,
        extra: dict[str, Any] | None,
        upload_id: str | None,
    ) -> UploadRecord:
        """A new record of an empty stream (its length checked)."""
        ledger = self.ledger
        ledger.check_length(length, ledger.bucket(bucket))
        now = ledger.now()
        return UploadRecord(
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
            expires_at=ledger.expiry(),
            extra=dict(extra or {}),
        )

    async def status(
        self, upload_id: str, *, interrupt: bool = False, check: RecordCheck | None = None
    ) -> UploadRecord:
        """Like ``get``, finishing an upload whose last write was saved but
        whose finishing step was cut short (a crash in between). With
        ``interrupt``, a write in flight is first asked to stop and save what
        it received, so the offset is one the next write is accepted at.
        ``check`` judges the record first."""
        if interrupt:
            async with self.ledger.locks.hold(upload_id):
                pass
        record = await self.ledger.get(upload_id)
        if check is not None:
            await check(record)
        if (
            record.status is Status.ACTIVE
            and record.kind is not Kind.ASSEMBLY
            and record.is_complete
        ):
            async with self.ledger.locks.hold(upload_id):
                record = await self.ledger.get(upload_id)
                if record.status is Status.ACTIVE and record.is_complete:
                    record = await self._finish(record)
            record = await self._after_unlock(record)
        return record

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
        check: RecordCheck | None = None,
        declare_digests: dict[str, str] | None = None,
        known: UploadRecord | None = None,
    ) -> UploadRecord:
        """Append ``body`` at ``offset``; return the saved record.

        ``declare_length`` sets a deferred length (once). ``content_length``
        lets a request that would overrun the length fail before any byte is
        read. ``require_complete_body`` (Qiniu chunks) discards a body cut short
        instead of keeping its bytes. ``check`` judges the record (read under
        the lock) before anything else. ``declare_digests`` ({algorithm: hex},
        an IETF append's ``Repr-Digest``) declares the whole upload's digests
        (``digests.declare``), checked when its last byte arrives. ``known``:
        the record as its caller just created it (``put``), not read back."""
        async with self.ledger.locks.hold(upload_id) as lease:
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
                check,
                declare_digests,
                known,
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
        check: RecordCheck | None,
        declare_digests: dict[str, str] | None,
        known: UploadRecord | None,
    ) -> UploadRecord:
        record = known if known is not None else await self.ledger.get(upload_id)
        if check is not None:
            await check(record)
        if record.kind is Kind.ASSEMBLY:
            raise Forbidden("an assembled upload cannot be written to")
        if offset != record.offset:
            if offset == 0 and is_instant(record):
                # a client unaware of instant upload sends its file: the
                # upload is complete, its body is not read
                return record
            raise OffsetMismatch(record.offset)
        if record.status is not Status.ACTIVE:  # complete: nothing more fits
            if content_length == 0:
                return record
            raise TooLarge("the upload is already complete")
        b = self.ledger.bucket(record.bucket)
        room = await self._room_in_assemblies(record, b)
        if declare_length is not None:
            if record.length is not None and record.length != declare_length:
                raise BadRequest("the upload length cannot change")
            if declare_length < record.offset:
                raise BadRequest("the declared length is below the current offset")
            self.ledger.check_length(declare_length, b)
            if room is not None and declare_length - record.offset > room[0]:
                raise too_large(room[1])
            record.length = declare_length
        limit = self._remaining(record)
        if room is not None and record.length is None:
            if content_length is not None and content_length > room[0]:
                raise too_large(room[1])
            limit = room[0] if limit is None else min(limit, room[0])
        if content_length is not None and limit is not None and content_length > limit:
            raise TooLarge("the body would exceed the upload length")
        if declare_digests:
            digests.declare(record, declare_digests)
        if record.status is Status.ACTIVE and record.is_complete:
            return await self._finish(record)
        all_hashers: list[Hasher] = list(hashers or [])
        if checksum is not None:
            all_hashers.append(checksum.hasher)
        running = await stream_digests.hashing(self.ledger, record, b)
        if running is not None:
            all_hashers.append(running)
        guarded = GuardedBody(body, limit=limit, lease=lease, hashers=all_hashers)
        try:
            with self.ledger.receiving_body(record.id, record.offset, guarded):
                result = await self._write_backend(
                    b.backend, record, guarded, content_length, running, checksum is None
                )
        finally:
            guarded.close()  # a backend may stop reading before the body's end
        refuse = refusal(guarded, checksum, require_complete_body)
        if refuse is not None:
            if result.rollback is not None and result.offset > record.offset:
                with backend_errors():
                    await result.rollback()
            raise refuse
        return await self._commit_write(record, result, running)

    async def _room_in_assemblies(
        self, record: UploadRecord, bucket: Bucket
    ) -> tuple[int, int] | None:
        """For a part of deferred length listed by unassembled assemblies: how
        far it may grow before one of them would exceed the size limit, and
        that limit (a part listed 17 times grows each of them 17 times)."""
        if record.kind is not Kind.PART or record.length is not None:
            return None
        limit = max_total(self.ledger.config, bucket)
        room = await self._refs.room(record, limit)
        return None if room is None or limit is None else (room, limit)

    def _remaining(self, record: UploadRecord) -> int | None:
        if record.length is not None:
            return record.length - record.offset
        max_size = self.ledger.config.server.max_upload_size
        return max_size - record.offset if max_size else None

    async def _write_backend(
        self,
        backend: Backend,
        record: UploadRecord,
        body: GuardedBody,
        incoming: int | None,
        running: digests.Running | None,
        unchecked: bool,
    ) -> WriteResult:
        stream = self.ledger.stream(record)
        stream.incoming = incoming
        # bytes checked against a checksum only once they have all passed: a
        # store must not make the object from them before (S3's PutObject,
        # Swift's plain PUT of a small stream); a refusal then leaves none
        stream.early_object = stream.early_object and unchecked
        if running is not None:
            stream.sha256 = functools.partial(digests.complete_sha256, running, record.length)
        with backend_errors():
            try:
                return await backend.write(stream, aiter(body))
            except BackendUnavailable as exc:
                if exc.partial is not None and exc.partial.offset > record.offset:
                    # keep what the store acknowledged before it failed
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._save_write(record, exc.partial, running))
                raise

    async def _save_write(
        self, record: UploadRecord, result: WriteResult, running: digests.Running | None
    ) -> None:
        digests.keep(record, running, result.offset)  # saved with the offset it is of
        record.offset = result.offset
        record.backend_state = result.state
        record.expires_at = self.ledger.expiry()
        await self.ledger.save(record)
        if result.after_commit is not None:
            try:
                await result.after_commit()
            except Exception:  # leftovers are swept later; the write stands
                log.warning("cleanup after write of %s failed", record.id, exc_info=True)

    async def _commit_write(
        self, record: UploadRecord, result: WriteResult, running: digests.Running | None
    ) -> UploadRecord:
        # shielded: a cancelled request still saves what the backend holds
        await asyncio.shield(self._save_write(record, result, running))
        if record.is_complete:
            record = await asyncio.shield(self._finish(record))
        return record

    # -- finishing -------------------------------------------------------------------
    async def _finish(self, record: UploadRecord) -> UploadRecord:
        """Seal a complete stream; an upload becomes its object. Lock held.
        Its digest is checked first: nothing wrong is sealed or committed."""
        ledger = self.ledger
        b = ledger.bucket(record.bucket)
        named = record.kind is Kind.UPLOAD and object_meta.named_by_etag(record)
        sealed = named and record.key is not None  # sealed and named by an earlier attempt
        running = None if sealed else await stream_digests.hashing(ledger, record, b)
        if running is not None:
            await stream_digests.conclude(ledger, record, running)
        if named and not sealed:
            # its keyless stream makes no object when sealed: sealed first, its qetag names it
            await self._seal(record, b, running)
            record.key = object_meta.key_of_etag(record)
            if record.key is None:  # its bytes could not be read back (logged)
                await ledger.reject(
                    record, "the qetag that names this upload could not be computed"
                )
            await ledger.save(record)  # a retry (a hook down) seals and hashes no more
            sealed = True
        if record.kind is Kind.UPLOAD:
            # before the stream is sealed: a store may make the object then
            assert record.key is not None
            committing: contextlib.AbstractAsyncContextManager[None] = ledger.committing(
                record, record.bucket, record.key
            )
        else:
            committing = contextlib.nullcontext()
        async with committing:
            if not sealed:
                await self._seal(record, b, running)
            if record.kind is Kind.UPLOAD:
                assert record.key is not None
                await ledger.commit_stream(b, record, b.backend_key(record.key))
                ledger.mark_finished(record)
                await schedule_deletion(b, record)  # a put policy's deleteAfterDays
            else:
                record.status = Status.COMPLETE
            await ledger.save(record)
        if record.status is Status.FINISHED:
            await ledger.finished(record)
        return record

    async def _seal(self, record: UploadRecord, b: Bucket, running: digests.Running | None) -> None:
        """``finish_stream``; then the digests its bytes were not readable for before."""
        with backend_errors():
            record.backend_state = await b.backend.finish_stream(self.ledger.stream(record))
        if running is None and self.ledger.digesting(record):
            await stream_digests.conclude_sealed(self.ledger, record, b)

    async def _after_unlock(self, record: UploadRecord) -> UploadRecord:
        """Work that needs other uploads' locks, done once this one is released."""
        if record.kind is Kind.PART and record.status is Status.COMPLETE:
            await self.ledger.events.notify(PART_COMPLETE, record)
        return record
