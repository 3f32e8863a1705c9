"""Objects made of finished parts.

``create_assembly`` makes an object of ``Kind.PART`` streams in order, now or
as soon as its last part completes (tus concatenation-unfinished: the
assembly's id is written under each of its parts, ``partials.PartRefs``, and
``part_done``, the handler of the core event ``PART_COMPLETE``, wakes it). A
part may be listed by several assemblies, even several times by one; it is
discarded after the answer of the last assembly that lists it, or once the
last one listing it is abandoned (terminated, or expired idle: ``abandoned``,
the handler of ``ASSEMBLY_ABANDONED``); an assembly that gives up (a part
gone, too large) stops listing its parts but leaves them to their own expiry.
``commit_part`` makes one complete part an object of its own (a Qiniu form
upload, a single-block mkfile).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from backends.base import ObjectMeta
from backends.concurrency import bounded
from gateway.core import digests, object_meta, stream_digests
from gateway.core.errors import BadRequest, Locked, NotReady, UploadGone, UploadNotFound
from gateway.core.expiry import schedule_deletion
from gateway.core.ledger import Ledger, backend_errors
from gateway.core.partials import PartRefs, known_size, lock_name, max_total, too_large
from gateway.core.records import Kind, Status, UploadRecord, new_upload_id

log = logging.getLogger(__name__)

_CONSUME_CONCURRENCY = 8  # assembled parts discarded at once
_SETTLE_WAIT = 0.5  # seconds a HEAD waits for a pending assembly's lock


class Assembly:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.refs = PartRefs(ledger.state, ledger.locks)

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
        ledger = self.ledger
        b = ledger.bucket(bucket)
        if not parts:
            raise BadRequest("an assembly needs at least one part")
        distinct = {p: await ledger.get(p) for p in dict.fromkeys(parts)}
        for part in distinct.values():
            if part.kind is not Kind.PART or part.bucket != bucket:
                raise BadRequest(f"upload {part.id} cannot be part of this assembly")
            if part.status is not Status.COMPLETE and not allow_unfinished:
                raise BadRequest(f"upload {part.id} is not finished")
        records = [distinct[p] for p in parts]
        # a part listed n times counts n times; a deferred one at what it holds
        limit = max_total(ledger.config, b)
        if limit and sum(known_size(p) for p in records) > limit:
            raise too_large(limit)
        known = all(p.length is not None for p in records)
        length = sum(p.length or 0 for p in records) if known else None
        now = self.ledger.now()
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
            expires_at=ledger.expiry(),
            extra=object_meta.with_meta(extra, meta),
        )
        added: list[str] = []
        try:
            for part_id in distinct:
                await self.refs.add(part_id, record.id)
                added.append(part_id)
            await ledger.create(record)
        except BaseException:
            for part_id in added:
                async with ledger.locks.hold(lock_name(part_id)):
                    await self.refs.drop(part_id, record.id)
            raise
        # now, or (a part unfinished) when its last part completes: ``part_done``
        return await self.assemble_now(record.id)

    async def assemble_now(self, assembly_id: str, timeout: float | None = None) -> UploadRecord:
        """Assemble if every part is complete (idempotent); return the record."""
        ledger = self.ledger
        async with ledger.locks.hold(assembly_id, timeout):
            record = await ledger.get(assembly_id)
            if record.status is not Status.ACTIVE:
                return record
            try:
                parts = [await ledger.get(p) for p in record.parts]
            except (UploadGone, UploadNotFound) as exc:  # terminated or expired: never
                log.warning("assembly %s gives up, a part is gone: %s", assembly_id, exc)
                ledger.tombstone(record, Status.EXPIRED)
                await ledger.save(record)
                # the other parts are no longer listed by it, but kept: the
                # client may list them in a new final with the gone one's successor
                self._release_all(record, discard=False)
                raise UploadGone(f"a part of this upload is gone: {exc}") from exc
            if any(p.status is not Status.COMPLETE for p in parts):
                return record
            b = ledger.bucket(record.bucket)
            limit = max_total(ledger.config, b)
            if limit and sum(p.offset for p in parts) > limit:  # deferred parts grown at once
                log.warning("assembly %s gives up: its parts exceed %d bytes", assembly_id, limit)
                ledger.tombstone(record, Status.EXPIRED)
                await ledger.save(record)
                self._release_all(record, discard=False)
                raise too_large(limit)
            assert record.key is not None
            await self._digest(record, parts)
            async with ledger.committing(record, record.bucket, record.key, parts):
                with backend_errors():
                    info = await b.backend.assemble(
                        [ledger.stream(p) for p in parts],
                        b.backend_key(record.key),
                        object_meta.stored(record),
                    )
                record.length = record.offset = info.size
                ledger.mark_finished(record)
                await schedule_deletion(b, record)
                await ledger.save(record)
        await ledger.finished(record)
        # after the answer, a few at a time: each costs the store a request
        # or two, and the object no longer needs them (a part left behind
        # by a crash expires and the sweeper discards it)
        self._release_all(record)
        return record

    async def _digest(self, record: UploadRecord, parts: Sequence[UploadRecord]) -> None:
        """The digest of the concatenation (``digests.concatenation``: all
        parts but the first are read back once); a mismatch with the declared
        digest refuses the assembly, and its parts are released (discarded
        unless another assembly lists them)."""
        ledger = self.ledger
        if not ledger.digesting(record):
            return

        def reader(part: UploadRecord) -> digests.Reader:
            backend, stream = ledger.bucket(part.bucket).backend, ledger.stream(part)
            return lambda start, end: backend.read_stream(stream, start, end)

        with backend_errors():
            running, reread = await digests.concatenation(record, parts, reader)
        stream_digests.chain_broken(ledger, record, parts, reread)
        reason = digests.conclude(record, running)
        if reason is not None:
            self._release_all(record)
            await ledger.reject(record, reason)

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
        ledger = self.ledger
        async with ledger.locks.hold(part_id):
            record = await ledger.get(part_id)
            if record.status is not Status.COMPLETE:
                raise NotReady("the part is not complete")
            target = ledger.bucket(bucket or record.bucket)
            if target.backend is not ledger.bucket(record.bucket).backend:
                raise BadRequest(f"bucket {target.name!r} is on another backend")
            object_meta.put(record, meta)
            if digests.SHA256 not in record.extra:  # a part stored before digests were kept
                await self._digest(record, [record])
            async with ledger.committing(record, target.name, key):
                await ledger.commit_stream(target, record, target.backend_key(key))
                record.bucket = target.name
                record.key = key
                record.metadata.update(metadata or {})
                record.extra.update(extra or {})
                digests.forget(record)
                ledger.mark_finished(record)
                await schedule_deletion(target, record)
                await ledger.save(record)
        await ledger.finished(record)
        return record

    async def abandoned(self, record: UploadRecord) -> None:
        """An assembly that will never be made (terminated, or expired idle):
        its parts are released as after an assembly — each is no longer
        listed by it, and discarded if no other assembly lists it."""
        if record.kind is Kind.ASSEMBLY:
            self._release_all(record)

    def _release_all(self, record: UploadRecord, discard: bool = True) -> None:
        # after the answer, a few at a time: each costs the store a request
        # or two (a part left behind by a crash expires and the sweeper
        # discards it)
        distinct = list(dict.fromkeys(record.parts))
        self.ledger.later(
            bounded(distinct, lambda p: self._release(p, record.id, discard), _CONSUME_CONCURRENCY)
        )

    async def _release(self, part_id: str, assembly_id: str, discard: bool = True) -> None:
        """The assembly no longer needs the part: with ``discard``, discard
        the part's storage if no other assembly lists it (its id then
        answers 410)."""
        ledger = self.ledger
        try:
            async with ledger.locks.hold(lock_name(part_id)):
                if not await self.refs.drop(part_id, assembly_id) or not discard:
                    return
                await ledger.drop_complete(part_id)
        except Exception:  # the sweeper removes it later
            log.warning("could not release part %s of %s", part_id, assembly_id, exc_info=True)

    async def settle_pending(self, record: UploadRecord) -> UploadRecord:
        """An assembly still waiting for its parts (as a HEAD sees it):
        assemble it if they are all complete (a wake-up lost to a crash), or
        end it (410) if one is gone and it can never finish."""
        if record.kind is not Kind.ASSEMBLY or record.status is not Status.ACTIVE:
            return record
        settle = bool(record.parts)
        for part_id in dict.fromkeys(record.parts):
            try:
                part = await self.ledger.get(part_id)
            except (UploadGone, UploadNotFound):
                settle = True
                break
            settle = settle and part.status is Status.COMPLETE
        if not settle:
            return record
        try:  # briefly: an assembly under way answers as pending
            return await self.assemble_now(record.id, timeout=_SETTLE_WAIT)
        except Locked:
            return record

    async def part_done(self, part: UploadRecord) -> None:
        """Assemble what waited for ``part`` (now complete)."""
        for assembly_id in await self.refs.referrers(part.id):
            try:
                await self.assemble_now(assembly_id)
            except Exception:
                log.warning("assembly %s failed", assembly_id, exc_info=True)
