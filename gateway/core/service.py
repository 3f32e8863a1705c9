"""UploadService: the protocol-independent core, one object the protocols call.

It wires the concerns together over one shared ``Ledger`` (``ledger.py``:
buckets, records, compare-and-set saves, locks, the backend-error
translation) and offers their methods under one name:

* ``uploads.py`` — ``create``, ``write``, ``status``: streams and their bytes;
* ``assembly.py`` — ``create_assembly``, ``commit_part``: objects made of
  finished parts (a part that completes wakes the assemblies waiting for it);
* ``expiry.py`` — ``terminate``, ``expire``: the end of an upload, the sweeper;
* ``reading.py`` — ``stat_object``, ``read``, ``read_stream``, ``object_url``.

``get`` is the record with its expiry checked; ``capabilities`` what a
bucket's store can do. The records without a stream and the named locks at
the end (``create_session`` … ``annotate``) serve a protocol's own sessions
(Qiniu v2 uploadIds).

Errors are those of ``gateway.core.errors``; backend errors are translated in
``ledger.backend_errors`` (``BackendUnavailable`` → ``ServiceUnavailable``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from backends.base import Capability
from gateway.core.assembly import Assembly
from gateway.core.errors import UploadError
from gateway.core.expiry import Expiry
from gateway.core.ledger import Bucket, Ledger
from gateway.core.locks import Lease
from gateway.core.reading import Reading
from gateway.core.records import Kind, Status, UploadRecord, new_upload_id
from gateway.core.uploads import Uploads

__all__ = ["Bucket", "UploadService"]


class UploadService:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.config = ledger.config
        self.state = ledger.state
        self.locks = ledger.locks
        self.backends = ledger.backends
        self.events = events = ledger.events
        self.buckets = ledger.buckets
        assembly = Assembly(ledger)
        uploads = Uploads(ledger, part_done=assembly.part_done)
        expiry = Expiry(ledger)
        reading = Reading(ledger)
        events.url_for = reading.hook_url

        self.bucket = ledger.bucket
        self.get = ledger.get
        self.object_lock = ledger.object_lock
        self.settle = ledger.settle
        self.create = uploads.create
        self.write = uploads.write

        async def status(upload_id: str) -> UploadRecord:
            return await assembly.settle_pending(await uploads.status(upload_id))

        self.status = status
        self.create_assembly = assembly.create_assembly
        self.commit_part = assembly.commit_part
        self.terminate = expiry.terminate
        self.expire = expiry.expire
        self.stat_object = reading.stat_object
        self.read = reading.read
        self.read_stream = reading.read_stream
        self.object_url = reading.object_url

    def capabilities(self, bucket: str) -> frozenset[Capability]:
        return self.bucket(bucket).backend.capabilities

    # -- for protocols: locks and records without a stream ---------------------------------
    def lock(self, name: str, timeout: float | None = None) -> AbstractAsyncContextManager[Lease]:
        """A lock on any name, for a protocol's own critical sections."""
        return self.locks.hold(name, timeout)

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
        await self.ledger.create(record)
        return record

    async def update(
        self, upload_id: str, change: Callable[[UploadRecord], bool]
    ) -> UploadRecord | None:
        """Apply ``change`` to the record under its lock, saving it if
        ``change`` returns True; None if there is no such record."""
        async with self.locks.hold(upload_id):
            record = await self.state.get(upload_id)
            if record is not None and change(record):
                await self.ledger.save(record)
        return record

    async def close_session(self, upload_id: str) -> None:
        """End an active session record: its id answers as gone from now on."""

        def close(record: UploadRecord) -> bool:
            if record.status is not Status.ACTIVE:
                return False
            self.ledger.tombstone(record, Status.EXPIRED)
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

    async def annotate(self, upload_id: str, extra: dict[str, Any]) -> UploadRecord:
        """Merge protocol bookkeeping into a record's ``extra`` (under its lock);
        e.g. the digests of a Qiniu v2 part, known once its bytes have passed."""
        async with self.locks.hold(upload_id):
            record = await self.get(upload_id)
            record.extra.update(extra)
            await self.ledger.save(record)
        return record
