"""Parts written straight into an upload of the object in the store.

When a multipart session's key is known at ``open`` and the store can write
an object in parts (``Capability.OBJECT_PARTS``: S3), the session opens an
upload on that key in the store (its state is the session's
``direct``), and every part at least the store's minimum part size goes
straight into it as the same-numbered part: stored once, never copied.
``complete`` then makes the object with one request. A part below the
minimum is a stream of its own, as on every store, until the parts after it
reach the minimum: the part that does is written into the upload *joined*
to them (``Earlier``: their bytes, in memory — received and still being
stored, or held by ``joining.py`` — or read back from their streams, then
its own as they arrive; the store's part has the number of the last client
part in it). So 4 MiB parts sent in order
pair up: every odd part is stored twice, every even part once, nothing is
copied at completion. Short parts after the last stored one are packed into
the final parts at completion (a single one copied in by the store). A list
whose parts before a stored part are not exactly those it joined (left out,
or sent again with other bytes) cannot be made (400: the upload's bytes
cannot be read back out of it) — the SDKs never send one.

``multipart.py`` decides when a part or a completion goes this way and ends
the session; this module talks to the store and makes the object's record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backends.base import JSON, Capability, ObjectMeta
from gateway.core import digests, object_meta, stream_digests
from gateway.core.body import GuardedBody
from gateway.core.errors import BadRequest, UploadError
from gateway.core.expiry import schedule_deletion
from gateway.core.joining import Joining, from_memory
from gateway.core.ledger import Bucket, Ledger, backend_errors
from gateway.core.records import Kind, UploadRecord, new_upload_id
from gateway.core.uploads import refusal

if TYPE_CHECKING:
    from gateway.core.multipart import Part, Session

log = logging.getLogger(__name__)

#: parts of the store's upload written at once from short parts at completion
_GROUPS_AT_ONCE = 4
#: parts released together once the object is made (their locks held at once)
_RELEASED_AT_ONCE = 64


@dataclass
class Earlier:
    """Finished parts whose bytes go first in a part of the object's upload."""

    ledger: Ledger
    joining: Joining
    b: Bucket
    parts: Sequence[tuple[Part, UploadRecord]]
    #: the bytes of parts received here and still being stored, by id
    received: Mapping[str, list[bytes]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(p.size for p, _ in self.parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Their bytes: in this process's memory, else read back."""
        for part, record in self.parts:
            held = self.received.get(record.id) or self.joining.take(record.id, part.etag)
            if held is not None:
                source = from_memory(held)
            else:
                source = self.b.backend.read_stream(self.ledger.stream(record))
            async for chunk in source:
                yield chunk


async def _then(first: AsyncIterator[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in first:
        yield chunk
    async for chunk in rest:
        yield chunk


def parts_capable(b: Bucket) -> bool:
    """Whether ``b``'s store can write an object as numbered parts, and make
    it from the parts the client lists, whichever it lists (not Ceph RGW 16:
    every part of the upload must be listed, ``Limits.partial_complete``)."""
    return Capability.OBJECT_PARTS in b.backend.capabilities and b.backend.limits.partial_complete


def checks_md5(b: Bucket, earlier: Earlier, md5: bytes | None) -> bool:
    """Whether a part going into the object's upload alone (no ``earlier``
    parts' bytes before its own) is checked against the client's ``md5`` by
    the store's write, so that the gateway need not hash it (S3: the part's
    ETag is its MD5)."""
    return md5 is not None and not earlier.parts and b.backend.limits.checks_part_md5


def fits_upload(b: Bucket, number: int, length: int | None) -> bool:
    """Whether a part of ``length`` bytes goes into the object's upload: it
    must be at least the store's minimum part (so that any part may follow
    it) and its number one the store takes."""
    limits = b.backend.limits
    if length is None or length < max(1, limits.min_part_size):
        return False
    return not limits.max_parts or number <= limits.max_parts


async def write_part(
    b: Bucket,
    upload: JSON,
    number: int,
    body: GuardedBody,
    length: int,
    earlier: Earlier | None = None,
    md5: bytes | None = None,
) -> JSON:
    """Part ``number`` into the object's upload (after the ``earlier``
    parts' bytes); a body the client cut short or overran is its refusal,
    not the store's failure. With ``md5`` (a part alone, where
    ``checks_md5``), the store's part is checked against it:
    ``ChecksumMismatch``."""
    source: AsyncIterator[bytes] = aiter(body)
    if earlier is not None and earlier.parts:
        source, length = _then(earlier.chunks(), source), length + earlier.size
    try:
        with backend_errors():
            return await b.backend.write_object_part(upload, number, source, length, md5)
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
    joining: Joining,
) -> list[UploadRecord]:
    """The object made by the store from the parts in its upload (and the
    short parts after the last of them, packed into final parts): one
    request, no bytes moved. Returns the parts' records (``release`` them
    once the session ended)."""
    b = ledger.bucket(session.bucket)
    assert session.direct is not None
    if key != session.key:
        raise BadRequest("the parts were stored for the key the upload was opened with")
    records = await ledger.state.get_many([p.id for p in parts])
    found = [r for r in records if r is not None]
    if len(found) != len(parts):
        raise BadRequest("a part of the upload is gone")
    size = sum(p.size for p in parts)
    ledger.check_length(size, b)
    # the store's parts: each stored part with the short parts it joined
    stored: list[tuple[int, JSON]] = []
    waiting: list[tuple[Part, UploadRecord]] = []
    for part, part_record in zip(parts, found, strict=True):
        if not part.direct:
            waiting.append((part, part_record))
            continue
        if tuple((p.number, p.etag) for p, _ in waiting) != part.joins:
            raise BadRequest(_not_joined(b, part, [p for p, _ in waiting]))
        stored.append((part.number, part_record.backend_state))
        waiting = []
    last = None
    if waiting:  # short parts after the last stored one
        groups = _groups(waiting, b.backend.limits.min_part_size)
        if len(groups[-1]) == 1:  # copied in by the store where it can
            ((only, only_record),) = groups.pop()
            last = (only.number, ledger.stream(only_record))
        stored += await _write_groups(Earlier(ledger, joining, b, []), session.direct, groups)
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
    async with ledger.committing(record, session.bucket, key, found):
        with backend_errors():
            await b.backend.complete_object(session.direct, stored, last, meta)
            await _digest(ledger, record, found, b, key)
        ledger.mark_finished(record)
        await schedule_deletion(b, record)
        await ledger.create(record)
    await ledger.finished(record)
    return found


def _groups(
    parts: Sequence[tuple[Part, UploadRecord]], minimum: int
) -> list[list[tuple[Part, UploadRecord]]]:
    """Consecutive ``parts`` in groups of at least ``minimum`` bytes (the
    last one may be shorter)."""
    groups: list[list[tuple[Part, UploadRecord]]] = [[]]
    size = 0
    for item in parts:
        if size >= max(1, minimum):
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += item[0].size
    return groups


async def _write_groups(
    template: Earlier, upload: JSON, groups: Sequence[Sequence[tuple[Part, UploadRecord]]]
) -> list[tuple[int, JSON]]:
    """Each group of finished parts as one part of ``upload`` (numbered by
    its last part), a few at a time."""
    slots = asyncio.Semaphore(_GROUPS_AT_ONCE)

    async def write(group: Sequence[tuple[Part, UploadRecord]]) -> tuple[int, JSON]:
        earlier = Earlier(template.ledger, template.joining, template.b, group)
        number = group[-1][0].number
        async with slots:
            with backend_errors():
                backend = template.b.backend
                return number, await backend.write_object_part(
                    upload, number, earlier.chunks(), earlier.size
                )

    return list(await asyncio.gather(*(write(g) for g in groups)))


def _not_joined(b: Bucket, part: Part, before: Sequence[Part]) -> str:
    """Why the store's part holding ``part`` cannot follow the listed
    stream-only parts ``before`` it."""
    if not part.joins:
        return (
            f"part {before[0].number} is smaller than the store's minimum part "
            f"({b.backend.limits.min_part_size} bytes) and is not the last: "
            "send it again with more bytes, or start a new upload"
        )
    joined = ", ".join(str(n) for n, _ in part.joins)
    return (
        f"part {part.number} is stored together with part(s) {joined} before it, "
        "which the list leaves out or which were sent again with other bytes: "
        f"send part {part.number} again after them, or start a new upload"
    )


async def _digest(
    ledger: Ledger, record: UploadRecord, parts: Sequence[UploadRecord], b: Bucket, key: str
) -> None:
    """The SHA-256 of an object the store made from its parts: the state
    chained through the parts as they arrived (``digest_chain``), or where
    that chain does not cover them all, the first part's state continued
    over the object's other bytes, read back once (parts arrive in any
    order and the store shows none before it is made)."""
    if not ledger.digesting(record):
        return
    backend_key = b.backend_key(key)
    running, reread = await digests.continued(
        record, parts, lambda start, end: b.backend.read(backend_key, start, end), record.offset
    )
    stream_digests.chain_broken(ledger, record, parts, reread)
    digests.conclude(record, running)  # no digest was declared: nothing to refuse


async def release(ledger: Ledger, parts: Sequence[UploadRecord]) -> None:
    """Parts made into the object: their records end (410); the short parts
    that were streams of their own are dropped, ``_RELEASED_AT_ONCE`` at a
    time (the sweeper does what fails)."""
    ids = [p.id for p in parts]
    for start in range(0, len(ids), _RELEASED_AT_ONCE):
        group = ids[start : start + _RELEASED_AT_ONCE]
        try:
            await ledger.drop_completes(group)
        except Exception as exc:
            log.warning(
                "could not release parts %s to %s of an object (%s)", group[0], group[-1], exc
            )
