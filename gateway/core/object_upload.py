"""An object written straight onto its key as the bytes arrive, and made
visible only once the caller has checked them.

Where the store can write an object as numbered parts of one upload on its
key (``Capability.OBJECT_PARTS``: S3 multipart), a request's body whose key
is known before its bytes (a Qiniu form file after its token and key) goes
into such an upload in parts of at least ``_PART`` bytes (and the store's
minimum), one part buffered at a time from the memory budget. Nothing is
visible until ``complete``: the caller runs every check that needs the bytes
first (size, CRC32, MIME, its put policy), then ``complete`` asks the
pre-finish hook and makes the object with one request — for a key that must
be free, one conditional on it (``If-None-Match: *``, only where the store
honours it: ``available``). A refused check, a cut body, a refusal or an
error ends in ``abort``: the store's upload is dropped and nothing was ever
visible. The stored bytes are never copied.

The upload has a record (``Kind.ASSEMBLY`` with the store's upload as its
backend state, as a multipart session's) from its first part on: a gateway
that dies mid-file leaves it to the sweeper, which aborts the store's upload
at its expiry. The same record becomes the object's (``FINISHED``) at
``complete``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from backends.base import JSON, Capability, Limits, ObjectMeta
from gateway.core import digests, object_meta
from gateway.core.body import Hasher
from gateway.core.errors import BadRequest, TooLarge
from gateway.core.expiry import schedule_deletion
from gateway.core.held import HeldBytes
from gateway.core.ledger import Bucket, Ledger, backend_errors
from gateway.core.records import Kind, Status, UploadRecord, new_upload_id

log = logging.getLogger(__name__)

#: the smallest part written (the store's minimum part, if larger): a 16 MiB
#: file is two requests
_PART = 8 * 1024 * 1024


def _part_size(limits: Limits) -> int:
    return max(_PART, limits.min_part_size)


def available(ledger: Ledger, bucket: str, if_absent: bool, at_most: int | None = None) -> bool:
    """Whether ``bucket``'s store can take an object of up to ``at_most``
    bytes (None: unknown) this way (and, with ``if_absent``, make it only
    where its key holds none)."""
    backend = ledger.bucket(bucket).backend
    if Capability.OBJECT_PARTS not in backend.capabilities:
        return False
    limits = backend.limits
    if at_most is not None and limits.max_parts and at_most > limits.max_parts * _part_size(limits):
        return False  # more parts than the store takes
    return not if_absent or limits.complete_if_absent


class ObjectUpload:
    """One object on its way; ``write`` once, then ``complete`` or ``abort``."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        protocol: str,
        bucket: str,
        key: str,
        if_absent: bool,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.ledger = ledger
        self.bucket = bucket
        self.b: Bucket = ledger.bucket(bucket)
        self.if_absent = if_absent
        now = ledger.now()
        self.record = UploadRecord(
            id=new_upload_id(),
            protocol=protocol,
            kind=Kind.ASSEMBLY,
            bucket=bucket,
            key=key,
            length=None,
            created_at=now,
            updated_at=now,
            expires_at=ledger.expiry(),
            extra=dict(extra or {}),
        )
        limits = self.b.backend.limits
        self._part = _part_size(limits)
        self._max_parts = limits.max_parts
        self._running = (
            digests.Running.fresh(["sha-256"]) if ledger.digesting(self.record) else None
        )
        #: the store's upload, once its first part is ready
        self._upload: JSON | None = None
        self._parts: list[tuple[int, JSON]] = []
        self.size = 0
        self._ended = False

    @property
    def key(self) -> str:
        assert self.record.key is not None
        return self.record.key

    async def write(
        self,
        first: HeldBytes,
        rest: AsyncIterator[bytes],
        hashers: Sequence[Hasher],
        content_type: Callable[[], str | None],
    ) -> None:
        """The bytes: ``first`` (already held; its budget is taken over and
        given back here) then ``rest``, all fed to ``hashers`` as they pass.
        The store's upload is opened with ``content_type()``, asked when the
        first part is ready (the first bytes have passed the hashers then).
        A failure leaves the upload to ``abort``."""
        budget = self.b.backend.context.budget
        buffer = first
        try:
            for chunk in first.chunks:
                self._hash(chunk, hashers)
            async for chunk in rest:
                if buffer.size >= self._part:
                    await self._send(buffer, content_type)
                    buffer = HeldBytes(budget)
                self._hash(chunk, hashers)
                await buffer.add(chunk)
            if buffer.size or not self._parts:
                await self._send(buffer, content_type)
        finally:
            buffer.release()

    def _hash(self, chunk: bytes, hashers: Sequence[Hasher]) -> None:
        self.size += len(chunk)
        self.ledger.received_before += len(chunk)  # the ops view's live bytes
        max_size = self.ledger.config.server.max_upload_size
        if max_size and self.size > max_size:
            raise TooLarge(f"the upload exceeds the maximum size of {max_size} bytes")
        for hasher in hashers:
            hasher.update(chunk)
        if self._running is not None:
            self._running.update(chunk)

    async def _send(self, buffer: HeldBytes, content_type: Callable[[], str | None]) -> None:
        """The buffered bytes as the next part."""
        number = len(self._parts) + 1
        if self._max_parts and number > self._max_parts:
            raise TooLarge(f"the store takes objects of at most {self._max_parts} parts")
        backend = self.b.backend
        if self._upload is None:
            meta = ObjectMeta(content_type=content_type())
            with backend_errors():
                self._upload = await backend.open_object(self.b.backend_key(self.key), meta)
            self.record.backend_state = self._upload
            await self.ledger.create(self.record)
            self.ledger.events.emit("post-create", self.record)
        chunks, size = buffer.chunks, buffer.size
        # the store's write takes these bytes' budget itself (S3: the part's)
        buffer.release()
        with backend_errors():
            state = await backend.write_object_part(self._upload, number, _each(chunks), size)
        self._parts.append((number, state))

    async def complete(
        self,
        key: str,
        *,
        metadata: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        meta: ObjectMeta | None = None,
    ) -> UploadRecord:
        """The object, once the caller's checks passed: the pre-finish hook
        (``HookRejected``), then one request to the store (``ObjectExists``
        where ``if_absent`` and the key holds an object; the upload then
        stays for ``abort``)."""
        if key != self.key:
            raise BadRequest(
                f"the object's key became {key!r} after its bytes were sent for {self.key!r}"
            )
        ledger, record = self.ledger, self.record
        assert self._upload is not None
        ledger.check_length(self.size, self.b)
        record.length = record.offset = self.size
        record.metadata = dict(metadata or {})
        record.extra = object_meta.with_meta({**record.extra, **(extra or {})}, meta)
        async with ledger.locks.hold(record.id), ledger.committing(record, record.bucket, key):
            with backend_errors():
                await self.b.backend.complete_object(
                    self._upload, self._parts, None, meta, if_absent=self.if_absent
                )
            self._ended = True
            if self._running is not None:
                digests.conclude(record, self._running)
            ledger.mark_finished(record)
            await schedule_deletion(self.b, record)
            await ledger.save(record)
        await ledger.finished(record)
        return record

    async def abort(self) -> None:
        """Drop the upload, if it was not made the object (idempotent; a
        failure is left to the sweeper, which aborts it at its expiry)."""
        if self._ended:
            return
        self._ended = True
        await asyncio.shield(self._drop())

    async def _drop(self) -> None:
        ledger, record = self.ledger, self.record
        if self._upload is None:
            return
        try:
            await self.b.backend.abort_object(self._upload)
            current = await ledger.state.get(record.id)
            if current is not None and current.status is Status.ACTIVE:
                ledger.tombstone(current, Status.TERMINATED)
                await ledger.state.save(current)
        except Exception as exc:  # the sweeper aborts it at its expiry
            log.warning("could not drop the upload of %s (%s)", record.id, exc)


async def _each(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
