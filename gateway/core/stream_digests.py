"""A stream's whole-file digests as the write path uses them: the hashers at
the stream's offset before a write, and the verdict when it finishes
(``core/digests.py`` holds the digests themselves; ``uploads.py`` calls
these under the upload's lock)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from gateway.core import digest_chain, digests
from gateway.core.ledger import Bucket, Ledger
from gateway.core.records import Kind, UploadRecord

log = logging.getLogger(__name__)


def _reader(ledger: Ledger, record: UploadRecord, b: Bucket) -> digests.Reader:
    stream = ledger.stream(record)
    return lambda start, end: b.backend.read_stream(stream, start, end)


async def hashing(ledger: Ledger, record: UploadRecord, b: Bucket) -> digests.Running | None:
    """The upload's digest hashers at its offset (None: it is not hashed)."""
    if not ledger.digesting(record):
        return None
    running = digests.resume(record)
    if running is None:
        running = await digests.catch_up(record, _reader(ledger, record, b))
        if running is not None:
            ledger.events.emit("digest-reread", record)
    return running


async def conclude(ledger: Ledger, record: UploadRecord, running: digests.Running) -> None:
    """Record the stream's digest; refuse it (bytes discarded) if it
    differs from the declared one."""
    reason = digests.conclude(record, running)
    if reason is None:
        if record.kind is not Kind.PART:  # a part's state may start an assembly's
            digests.forget(record)
        return
    await ledger.reject(record, reason)


async def conclude_sealed(ledger: Ledger, record: UploadRecord, b: Bucket) -> None:
    """The digest of a stream whose unhashed bytes only a sealed stream
    lets the store read back (S3 multipart parts after a store failure)."""
    running = await digests.catch_up(record, _reader(ledger, record, b))
    if running is not None:
        ledger.events.emit("digest-reread", record)
        await conclude(ledger, record, running)
    elif digests.declared(record):
        await ledger.reject(record, "the declared digest could not be verified")
    else:
        log.error("upload %s: its SHA-256 could not be computed", record.id)


def chain_broken(
    ledger: Ledger, record: UploadRecord, parts: Sequence[UploadRecord], reread: int
) -> None:
    """Count an object made of a multipart session's parts whose SHA-256
    read ``reread`` bytes back: its parts' chain (``digest_chain``) did not
    cover them (sent out of order across instances, again, or listed in
    part; a restart)."""
    if reread and digest_chain.chained(parts):
        ledger.events.emit("digest-reread", record)
        log.info(
            "upload %s: %d of its %d bytes read back for its SHA-256 (its parts' chain was broken)",
            record.id,
            reread,
            record.offset,
        )
