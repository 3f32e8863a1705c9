"""Instant upload (秒传): a creation whose declared SHA-256 and length match a
finished object the caller may read completes at once, by a copy inside the
store (``Backend.copy_object``); no byte of the file is sent.

The digest index (``StateStore.index_*``) maps SHA-256 + size to finished
objects. It is kept here and in the ledger's commit points:

* an entry is dropped *before* anything replaces the object at its key
  (``Ledger.approve_commit``), so a crash never leaves an entry naming other
  bytes; it is written once the finished record is saved (``index``);
* a deleted object (tus DELETE of a finished upload, its lifetime's end)
  loses its entry before the object goes, under the object's lock;
* an instant upload holds the source object's lock while it copies, so no
  deletion runs meanwhile, and re-checks the entry and the object's size;
  the copy is made at the commit point (``Ledger.committing``: the pre-finish
  hook, insert-only) like any upload's object.

Who matches whom (``owner_key``): by default an upload matches objects of the
same bucket made by the same owner — the credential's endUser (JWT ``sub``);
without one, the credential's scope; anonymous uploads match anonymous
uploads of a public bucket only. The bucket option ``instant_upload: bucket``
widens credentialed uploads to the whole bucket; ``off`` turns it off. The
index is queried by owner, so another owner's object costs no more time and
answers no differently than no object at all.
"""

from __future__ import annotations

import logging

from backends.errors import BackendError, InvalidState
from backends.errors import NotFound as BackendNotFound
from gateway.access.placement import MIME_LIMIT_FIELD
from gateway.core import object_meta
from gateway.core.digest_index import (
    ANONYMOUS,
    INSTANT,
    SHA256,
    declared_sha256,
    owner_key,
)
from gateway.core.expiry import schedule_deletion
from gateway.core.ledger import Bucket, Ledger, backend_errors
from gateway.core.records import Kind, UploadRecord
from gateway.core.state.base import IndexedObject

log = logging.getLogger(__name__)

#: index entries tried per creation (another may have vanished meanwhile)
_CANDIDATES = 4


class Instant:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def find(self, record: UploadRecord) -> list[IndexedObject]:
        """Objects ``record`` may be made from at once (none if it cannot)."""
        ledger = self.ledger
        config = ledger.config.buckets.get(record.bucket)
        sha256 = declared_sha256(record)
        if (
            config is None
            or config.instant_upload == "off"
            or record.kind is not Kind.UPLOAD
            or record.key is None
            or not record.length
            or sha256 is None
            # a mimeLimit is judged on the bytes themselves, which are not sent
            or MIME_LIMIT_FIELD in record.extra
        ):
            return []
        owner = owner_key(record)
        if owner == ANONYMOUS and config.private:
            return []  # anonymous uploaders could not read the object otherwise
        scope = owner if config.instant_upload == "owner" or owner == ANONYMOUS else None
        found = await ledger.state.index_find(
            record.bucket, sha256, record.length, scope, _CANDIDATES
        )
        if scope is None:  # the whole bucket, but anonymous objects only to anonymous
            found = [e for e in found if e.owner != ANONYMOUS]
        return found

    async def complete(self, record: UploadRecord, found: list[IndexedObject]) -> bool:
        """Make ``record`` (created, no stream yet) its object from the first
        of ``found`` still there. False if none is (or the store cannot copy
        it): the upload then receives its bytes as any other. A pre-finish
        hook decides as for any upload (``HookRejected`` leaves here)."""
        ledger = self.ledger
        b = ledger.bucket(record.bucket)
        assert record.key is not None and record.length is not None
        for source in found:
            # the source's lock: no deletion while it is copied; the target's
            # is the commit point's (``committing``, for insert-only uploads)
            async with (
                ledger.object_lock(record.bucket, source.key),
                ledger.locks.hold(record.id),
            ):
                if not await self._still_there(b, source):
                    continue
                if source.key == record.key and object_meta.is_insert_only(record):
                    continue  # its key is taken: the commit point would refuse it
                async with ledger.committing(record, record.bucket, record.key):
                    if source.key != record.key and not await self._copy(b, source, record):
                        continue
                    record.offset = record.length
                    record.extra[SHA256] = source.sha256
                    record.extra[INSTANT] = {"from": source.key}
                    ledger.mark_finished(record)
                    await schedule_deletion(b, record)
                    await ledger.save(record)
            log.info(
                "instant upload %s: %s/%s copied from %s (%d bytes)",
                record.id, record.bucket, record.key, source.key, record.length,
            )  # fmt: skip
            ledger.events.emit("instant", record)
            await ledger.finished(record)
            return True
        return False

    async def _still_there(self, b: Bucket, source: IndexedObject) -> bool:
        """Is ``source`` still indexed and its object of that size? A vanished
        object's entry is dropped."""
        state = self.ledger.state
        if await state.index_get(source.bucket, source.key) != source:
            return False
        try:
            info = await b.backend.stat(b.backend_key(source.key))
        except BackendError as exc:
            log.warning("instant upload: cannot stat %s: %s", source.key, exc)
            return False
        if info is None or info.size != source.size:
            log.warning("digest index: %s/%s is gone or changed; dropped", b.name, source.key)
            await state.index_remove(source.bucket, source.key, source.upload_id)
            return False
        return True

    async def _copy(self, b: Bucket, source: IndexedObject, record: UploadRecord) -> bool:
        assert record.key is not None
        with backend_errors():
            try:
                # the copy keeps the SHA-256 too, where the store keeps one
                meta = object_meta.stored(record, source.sha256)
                await b.backend.copy_object(
                    b.backend_key(source.key), b.backend_key(record.key), meta
                )
            except BackendNotFound:
                await self.ledger.state.index_remove(source.bucket, source.key, source.upload_id)
                return False
            except InvalidState as exc:  # the store will not copy this one: take the bytes
                log.warning("instant upload %s falls back to receiving bytes: %s", record.id, exc)
                return False
        return True
