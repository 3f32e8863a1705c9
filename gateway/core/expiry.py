"""The end of an upload: termination by its client, expiry by the sweeper.

``Expiry.terminate`` discards an upload's bytes (or its finished object) and
leaves a tombstone; ``Expiry.expire`` does the same for an idle upload, the
object of a finished one whose lifetime ended (``object_meta``), and drops
tombstones; an assembly that so ends before it was made raises the core
event ``ASSEMBLY_ABANDONED`` (its parts are released). The sweeper
(``sweep_once`` / ``run_sweeper``) finds what is due; on several instances
only the holder of the ``sweeper`` lock sweeps in a given round.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from backends.base import Capability
from backends.errors import BackendError
from gateway.core import object_meta
from gateway.core.errors import Locked, UploadError
from gateway.core.events import ASSEMBLY_ABANDONED
from gateway.core.ledger import CONCAT_WAIT, Bucket, Ledger, backend_errors
from gateway.core.locks import LockManager
from gateway.core.records import Kind, RecordCheck, Status, UploadRecord
from gateway.core.state.base import StateStore

log = logging.getLogger(__name__)


class Expiry:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def terminate(self, upload_id: str, *, check: RecordCheck | None = None) -> None:
        """End an upload (its bytes discarded; its id answers 410); ``check``
        judges the record first."""
        ledger = self.ledger
        async with ledger.locks.hold(upload_id):
            record = await ledger.get(upload_id)
            if check is not None:
                await check(record)
            pending = _pending_assembly(record)
            await self._discard(record)
            ledger.tombstone(record, Status.TERMINATED)
            await ledger.state.save(record)
        if pending:
            await ledger.events.notify(ASSEMBLY_ABANDONED, record)
        ledger.events.emit("post-terminate", record)

    async def expire(self, upload_id: str) -> None:
        """Sweeper: drop an expired upload's storage, or a tombstone's record."""
        ledger = self.ledger
        async with ledger.locks.hold(upload_id, timeout=1.0):
            record = await ledger.state.get(upload_id)
            if record is None or record.expires_at is None or record.expires_at > ledger.now():
                return
            if record.status in (Status.TERMINATED, Status.EXPIRED):
                await ledger.state.delete(upload_id)
                await ledger.state.kv_delete(CONCAT_WAIT, upload_id)
                return
            pending = _pending_assembly(record)
            if record.status is Status.FINISHED:  # its object's lifetime ended
                await self._expire_object(record)
            else:
                await self._discard(record)
            unfinished = record.status is not Status.FINISHED
            ledger.tombstone(record, Status.EXPIRED)
            await ledger.state.save(record)
            if unfinished:  # for the metrics; no webhook is configured for it
                ledger.events.emit("expired", record)
        if pending:
            await ledger.events.notify(ASSEMBLY_ABANDONED, record)

    async def _discard(self, record: UploadRecord) -> None:
        b = self.ledger.bucket(record.bucket)
        if record.status is Status.FINISHED and record.key is not None:
            # not while an instant upload copies it; out of the index first
            async with self.ledger.object_lock(record.bucket, record.key):
                await self.ledger.state.index_remove(record.bucket, record.key)
                with backend_errors():
                    await b.backend.delete_object(b.backend_key(record.key))
        elif record.kind is not Kind.ASSEMBLY:
            with backend_errors():
                await b.backend.discard_stream(self.ledger.stream(record))
        elif record.backend_state and Capability.OBJECT_PARTS in b.backend.capabilities:
            with backend_errors():  # a multipart session's upload of its object
                await b.backend.abort_object(record.backend_state)

    async def _expire_object(self, record: UploadRecord) -> None:
        """Delete the object of an expired finished record, unless a newer
        upload replaced it since (then the object is not this record's)."""
        if record.key is None:
            return
        b = self.ledger.bucket(record.bucket)
        key = b.backend_key(record.key)
        async with self.ledger.object_lock(record.bucket, record.key, timeout=1.0):
            with backend_errors():
                info = await b.backend.stat(key)
            if info is not None and object_meta.is_same(record, info):
                await self.ledger.state.index_remove(record.bucket, record.key)
                with backend_errors():
                    await b.backend.delete_object(key)


def _pending_assembly(record: UploadRecord) -> bool:
    """An assembly still waiting for its parts (it lists them)."""
    return record.kind is Kind.ASSEMBLY and record.status is Status.ACTIVE


async def schedule_deletion(b: Bucket, record: UploadRecord) -> None:
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


# -- the sweeper --------------------------------------------------------------------------
class Sweepable(Protocol):
    """What the sweeper needs (the ``UploadService`` has it)."""

    @property
    def state(self) -> StateStore: ...

    @property
    def locks(self) -> LockManager: ...

    async def expire(self, upload_id: str) -> None: ...

    def now(self) -> float: ...


async def sweep_once(service: Sweepable) -> int:
    """One pass; returns how many records it handled."""
    handled = 0
    try:
        async with service.locks.hold("sweeper", timeout=0.1):
            for _round in range(50):  # bounded: stuck records wait for the next pass
                ids = await service.state.expired(service.now(), limit=100)
                if not ids:
                    break
                progress = 0
                for upload_id in ids:
                    try:
                        await service.expire(upload_id)
                        progress += 1
                    except Locked:
                        continue  # busy: a request is using it, so it is not idle
                    except UploadError as exc:
                        log.warning("expiring %s failed: %s", upload_id, exc)
                handled += progress
                if progress == 0:
                    break
    except Locked:
        pass  # another instance is sweeping
    return handled


async def run_sweeper(service: Sweepable, interval: float) -> None:
    while True:
        try:
            n = await sweep_once(service)
            if n:
                log.info("sweeper handled %d expired uploads", n)
        except asyncio.CancelledError:
            raise
        except UploadError as exc:  # state store or backend down: try next round
            log.warning("sweeper pass skipped: %s", exc)
        except Exception:
            log.exception("sweeper pass failed")
        await asyncio.sleep(interval)
