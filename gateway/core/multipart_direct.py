"""Parts written straight into an upload of the object in the store.

When a multipart session's key is known at ``open`` and the store can write
an object in parts (``Capability.OBJECT_PARTS``: S3), the session opens an
upload on that key in the store (its state is the session's
``direct``), and every part at least the store's minimum part size goes
straight into it as the same-numbered part: stored once, never copied.
``complete`` then makes the object with one request (a smaller last part is
copied in as the final part). Parts below the minimum are streams of their
own, as on every store; a list that would put one of them before a part
stored in the upload cannot be made (400: its bytes cannot be read back out
of the upload) — the SDKs never send one.

``multipart.py`` decides when a part or a completion goes this way and ends
the session; this module talks to the store and makes the object's record.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from backends.base import JSON, Capability, ObjectMeta
from gateway.core import digests, object_meta
from gateway.core.body import GuardedBody
from gateway.core.errors import BadRequest, UploadError
from gateway.core.expiry import schedule_deletion
from gateway.core.ledger import Bucket, Ledger, backend_errors
from gateway.core.records import Kind, UploadRecord, new_upload_id
from gateway.core.uploads import refusal

if TYPE_CHECKING:
    from gateway.core.multipart import Part, Session

log = logging.getLogger(__name__)


def parts_capable(b: Bucket) -> bool:
    """Whether ``b``'s store can write an object as numbered parts."""
    return Capability.OBJECT_PARTS in b.backend.capabilities


def fits_upload(b: Bucket, number: int, length: int | None) -> bool:
    """Whether a part of ``length`` bytes goes into the object's upload: it
    must be at least the store's minimum part (so that any part may follow
    it) and its number one the store takes."""
    limits = b.backend.limits
    if length is None or length < max(1, limits.min_part_size):
        return False
    return not limits.max_parts or number <= limits.max_parts


async def write_part(b: Bucket, upload: JSON, number: int, body: GuardedBody, length: int) -> JSON:
    """Part ``number`` into the object's upload; a body the client cut short
    or overran is its refusal, not the store's failure."""
    try:
        with backend_errors():
            return await b.backend.write_object_part(upload, number, aiter(body), length)
    except UploadError:
        body.close()
        refuse = refusal(body, None, require_complete=True)
        if refuse is not None:
            raise refuse from None
        raise


async def complete(
    ledger: Ledger,
    session: Session,
    parts: Sequence[Part],
    key: str,
    metadata: dict[str, str] | None,
    extra: dict[str, Any] | None,
    meta: ObjectMeta | None,
) -> list[UploadRecord]:
    """The object made by the store from the parts in its upload (and a
    small last part copied in after them): one request, no bytes moved.
    Returns the parts' records (``release`` them once the session ended)."""
    b = ledger.bucket(session.bucket)
    assert session.direct is not None
    if key != session.key:
        raise BadRequest("the parts were stored for the key the upload was opened with")
    for part in parts[:-1]:
        if not part.direct:
            raise BadRequest(
                f"part {part.number} is smaller than the store's minimum part "
                f"({b.backend.limits.min_part_size} bytes) and is not the last: "
                "send it again with more bytes, or start a new upload"
            )
    records = await ledger.state.get_many([p.id for p in parts])
    found = [r for r in records if r is not None]
    if len(found) != len(parts):
        raise BadRequest("a part of the upload is gone")
    size = sum(p.size for p in parts)
    ledger.check_length(size, b)
    now = ledger.now()
    record = UploadRecord(
        id=new_upload_id(),
        protocol=session.protocol,
        kind=Kind.ASSEMBLY,
        bucket=session.bucket,
        key=key,
        length=size,
        offset=size,
        metadata=dict(metadata or {}),
        parts=[p.id for p in parts],
        created_at=now,
        updated_at=now,
        expires_at=ledger.expiry(),
        extra=object_meta.with_meta(extra, meta),
    )
    stored = [(p.number, r.backend_state) for p, r in zip(parts, found, strict=True) if p.direct]
    last = None
    if not parts[-1].direct:
        last = (parts[-1].number, ledger.stream(found[-1]))
    async with ledger.committing(record, session.bucket, key, found):
        with backend_errors():
            await b.backend.complete_object(session.direct, stored, last, meta)
            await _digest(ledger, record, found[0], b, key)
        ledger.mark_finished(record)
        await schedule_deletion(b, record)
        await ledger.create(record)
    await ledger.finished(record)
    return found


async def _digest(
    ledger: Ledger, record: UploadRecord, first: UploadRecord, b: Bucket, key: str
) -> None:
    """The SHA-256 of an object the store made from its parts: parts
    arrive in any order and the store shows none before it is made, so
    the first part's state continues over the object's other bytes, read
    back once (as for a final: ``digests.concatenation``)."""
    if not ledger.digesting(record):
        return
    backend_key = b.backend_key(key)
    running = await digests.continued(
        record, first, lambda start, end: b.backend.read(backend_key, start, end), record.offset
    )
    digests.conclude(record, running)  # no digest was declared: nothing to refuse


async def release(ledger: Ledger, parts: Sequence[UploadRecord]) -> None:
    """Parts made into the object: their records end (410); a last part
    that was a stream of its own is dropped (the sweeper does what fails)."""
    for part in parts:
        try:
            await ledger.drop_complete(part.id)
        except Exception as exc:
            log.warning("could not release part %s of an object (%s)", part.id, exc)
