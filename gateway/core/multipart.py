"""Multipart uploads with known order: open a session, put numbered parts
(each one request, verified before it is sealed), list them, complete the
object from a chosen list of parts, or abort. Qiniu v2 is one client of it;
an S3-style API would be another.

A session is a record of its own (``Kind.ASSEMBLY`` without parts, swept at
its expiry), so every instance sees it and it survives restarts. Its part
*n* is a ``Kind.PART`` stream with the derived id ``<session>-<n>``: any
instance finds it without a map, and a part costs the same however many
there are. Putting a part takes one lock (the part's), two reads (the
session, the part it replaces) and two saves (the new part, then the part
sealed with its digests); a re-sent part replaces the old one. Where its
SHA-256 is kept, a part also reads the part before it (``chaining.py``).

When the object's key is known at ``open`` and the store can write an
object in parts (S3), large parts go straight into an upload of the object
in the store (``multipart_direct.py``), and shorter ones are joined there to
the part that brings them to the store's minimum (``_joinable``).

``assemble`` / ``discard`` make an object of (or drop) complete streams in a
given order, for any protocol that tracks its parts itself (Qiniu v1).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from backends.base import JSON, ObjectMeta, WriteResult
from backends.errors import BackendError
from gateway.core import digests, multipart_direct
from gateway.core.assembly import Assembly
from gateway.core.body import GuardedBody, Hasher
from gateway.core.chaining import Chaining, Link
from gateway.core.checksums import Crc32
from gateway.core.errors import (
    BadRequest,
    ChecksumMismatch,
    HookRejected,
    NoSuchSession,
    UploadError,
)
from gateway.core.expiry import Expiry
from gateway.core.joining import Collector, Joining, Received
from gateway.core.ledger import Bucket, Ledger, backend_errors
from gateway.core.records import Kind, Status, UploadRecord, new_upload_id
from gateway.core.uploads import Uploads, refusal

log = logging.getLogger(__name__)

MAX_PART_NUMBER = 10000
_MARK = "core:multipart"  # in ``extra``: what makes a record a session or a part
_LIST_BATCH = 1000  # part ids read at once when listing
#: the most short parts one part of the store's upload is joined from
_MAX_JOINED = 16
#: and the most bytes read back for one (S3 takes parts up to 5 GiB)
_MAX_JOINED_BYTES = 1024**3

#: the access layer's word on whether a request may use a session's record
Admit = Callable[[UploadRecord], bool]


@dataclass(frozen=True)
class Session:
    id: str
    protocol: str
    bucket: str
    key: str | None
    expires_at: float
    #: what the protocol kept with the session (``open(extra=…)``)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    #: the object's upload in the store that parts are written into, if any
    direct: JSON | None = None


@dataclass(frozen=True)
class Part:
    number: int
    id: str
    size: int
    #: the MD5 of the part's bytes, hex
    etag: str
    put_time: int
    #: what the protocol asked to keep with the part (``put_part(info=…)``)
    info: dict[str, Any]
    #: stored as a part of the session's upload of the object (not readable)
    direct: bool = False
    #: (number, etag) of the earlier parts whose bytes precede this part's in
    #: its part of the store's upload (``direct`` only)
    joins: tuple[tuple[int, str], ...] = ()


def part_id(session_id: str, number: int) -> str:
    return f"{session_id}-{number}"


def is_session(record: UploadRecord) -> bool:
    """``record`` is a multipart session (its parts: ``part_id(record.id, n)``)."""
    return record.extra.get(_MARK) == "session"


def _part_of(record: UploadRecord) -> Part | None:
    mark = record.extra.get(_MARK)
    if record.status is not Status.COMPLETE or not isinstance(mark, dict):
        return None
    info = {k: v for k, v in record.extra.items() if k != _MARK}
    return Part(
        mark["number"],
        record.id,
        record.offset,
        mark["etag"],
        mark["putTime"],
        info,
        bool(mark.get("direct")),
        tuple((int(n), str(etag)) for n, etag in mark.get("joins", ())),
    )


def _check_received(
    body: GuardedBody,
    written: int,
    content_length: int | None,
    md5: hashlib._Hash | None,
    content_md5: bytes | None,
) -> None:
    """Refuse a part's body that did not arrive whole (``written`` of its
    ``content_length`` bytes stored) or, hashed here (``md5``), is not what
    the client's Content-MD5 names."""
    refuse = refusal(body, None, require_complete=True)
    if refuse is not None:
        raise refuse
    if content_length is not None and written != content_length:
        raise BadRequest("the body was cut short")
    if md5 is not None and content_md5 is not None and md5.digest() != content_md5:
        raise ChecksumMismatch("Content-MD5 mismatch")


class Multipart:
    def __init__(self, ledger: Ledger, uploads: Uploads, assembly: Assembly, expiry: Expiry):
        self.ledger = ledger
        self._uploads = uploads
        self._assembly = assembly
        self._expiry = expiry
        self._joining = Joining()
        self._chaining = Chaining(ledger.state)

    # -- sessions --------------------------------------------------------------------
    async def open(
        self,
        *,
        protocol: str,
        bucket: str,
        key: str | None,
        ttl: float,
        extra: dict[str, Any] | None = None,
        direct: ObjectMeta | None = None,
    ) -> Session:
        """A new session for the object ``key`` (None: named at completion);
        ``extra`` is kept on its record (e.g. its owner, for ``admit``).
        With ``direct`` (the object's meta, its content type final), large
        parts go straight into an upload of ``key`` where the store can."""
        b = self.ledger.bucket(bucket)
        now = self.ledger.now()
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
            extra={**(extra or {}), _MARK: "session"},
        )
        if direct is not None and key is not None and multipart_direct.parts_capable(b):
            with backend_errors():
                record.backend_state = await b.backend.open_object(b.backend_key(key), direct)
        await self.ledger.create(record)
        return self._session_of(record)

    async def session(
        self, session_id: str, bucket: str, protocol: str, admit: Admit | None = None
    ) -> Session:
        """The open session ``session_id`` of ``bucket`` opened by
        ``protocol``, if ``admit`` (the access layer's) admits its record;
        else ``NoSuchSession``."""
        try:
            record = await self.ledger.get(session_id)
        except UploadError:
            raise NoSuchSession() from None
        if (
            record.extra.get(_MARK) != "session"
            or record.bucket != bucket
            or record.protocol != protocol
            or record.status is not Status.ACTIVE
            or (admit is not None and not admit(record))
        ):
            raise NoSuchSession()
        return self._session_of(record)

    @staticmethod
    def _session_of(record: UploadRecord) -> Session:
        assert record.expires_at is not None
        return Session(
            record.id,
            record.protocol,
            record.bucket,
            record.key,
            record.expires_at,
            record.extra,
            record.backend_state or None,
        )

    # -- parts -----------------------------------------------------------------------
    async def put_part(
        self,
        session: Session,
        number: int,
        body: AsyncIterator[bytes],
        *,
        content_length: int | None,
        content_md5: bytes | None = None,
        crc32: int | None = None,
        hashers: Sequence[Hasher] = (),
        info: Callable[[], dict[str, Any]] | None = None,
    ) -> Part:
        """Store part ``number`` of ``session`` from ``body`` (all of it, or
        nothing), replacing the part of that number if there was one. The
        bytes are checked against ``content_md5`` / ``crc32`` before the part
        is sealed; ``info()``, called once the body has passed ``hashers``, is
        kept with the part."""
        if not 1 <= number <= MAX_PART_NUMBER:
            raise BadRequest(f"part numbers go from 1 to {MAX_PART_NUMBER}")
        ledger = self.ledger
        b = ledger.bucket(session.bucket)
        ledger.check_length(content_length, b)
        pid = part_id(session.id, number)
        unchanged = await self._sent_again_unchanged(pid, body, content_length, content_md5, crc32)
        if unchanged is not None:
            return unchanged
        # announced first: the next part may wait for this one to be stored
        async with self._joining.arriving(pid, content_length):
            joined = await self._joinable(session, b, number, content_length)
            direct = joined is not None
            if direct:
                self._joining.going_direct(pid)
            # a short part that may wait to be joined: its bytes, kept in memory
            # (and offered to the next part as soon as they are all in)
            minimum = b.backend.limits.min_part_size
            waits = session.direct is not None and joined is None and content_length is not None
            keeps = waits and (content_length or 0) < minimum
            async with ledger.locks.hold(pid) as lease:
                self._joining.drop(pid)
                self._chaining.drop(pid)
                old = await ledger.state.get(pid)
                if old is not None and old.status in (Status.ACTIVE, Status.COMPLETE):
                    with backend_errors():
                        await b.backend.discard_stream(ledger.stream(old))
                now = self.ledger.now()
                record = UploadRecord(
                    id=pid,
                    protocol=session.protocol,
                    kind=Kind.PART,
                    bucket=session.bucket,
                    key=None,
                    length=content_length,
                    created_at=now,
                    updated_at=now,
                    expires_at=ledger.expiry(),
                    extra={_MARK: {"session": session.id, "number": number}},
                )
                if not direct:
                    with backend_errors():
                        record.backend_state = await b.backend.create_stream(ledger.stream(record))
                if old is None:
                    await ledger.create(record)
                else:
                    record.version = old.version
                    await ledger.save(record)
                # the CRC only where the client sent one to check (0.3 s/GiB);
                # the MD5 not where the store's write checks it (1.6 s/GiB):
                # a part going alone into the object's upload, or written
                # whole as a short stream's one PutObject
                stream = ledger.stream(record)
                stream.incoming = content_length
                if joined is not None:
                    by_store = multipart_direct.checks_md5(b, joined, content_md5)
                else:
                    by_store = content_md5 is not None and b.backend.checks_write_md5(stream)
                    stream.md5 = content_md5 if by_store else None
                md5 = None if by_store else hashlib.md5()
                crc = Crc32() if crc32 is not None else None
                # the session's SHA-256, chained through its parts; a part's
                # own is kept for part 1 only (its state starts the chain: a
                # list that starts elsewhere reads its first part back)
                link = running = None
                if ledger.digesting(record):
                    before = part_id(session.id, number - 1) if number > 1 else None
                    tip = self._joining.chain_of(before) if before is not None else None
                    link = await self._chaining.begin(before, content_length, tip)
                    running = link.running if number == 1 else None

                def offer(etag: str) -> None:
                    """The part's bytes checked out: the next part may join them."""
                    assert collector is not None and content_length is not None
                    chain = link.settle(content_length) if link is not None else None
                    early = Received(etag, content_length, collector.chunks, chain)
                    self._joining.received(pid, early)

                def received() -> None:
                    """Every byte is in: if they check out here, offer them
                    (checked by the store instead: once it has answered)."""
                    assert md5 is not None
                    if content_md5 is not None and md5.digest() != content_md5:
                        return
                    if crc is not None and crc.value != crc32:
                        return
                    offer(md5.hexdigest())

                full = received if md5 is not None else None
                collector = Collector(content_length, full) if keeps else None
                max_size = ledger.config.server.max_upload_size or None
                guarded = GuardedBody(
                    body,
                    limit=content_length if content_length is not None else max_size,
                    lease=lease,
                    hashers=[
                        *([md5] if md5 else []),
                        *([crc] if crc else []),
                        *([link] if link else []),
                        *hashers,
                        *([collector] if collector else []),
                    ],
                )
                result: WriteResult | None = None
                part_state: JSON | None = None
                try:
                    try:
                        with ledger.receiving_body(pid, 0, guarded):
                            if joined is not None:
                                assert session.direct is not None and content_length is not None
                                part_state = await multipart_direct.write_part(
                                    b, session.direct, number, guarded, content_length, joined,
                                    content_md5 if by_store else None,
                                )  # fmt: skip
                                written = content_length
                            else:
                                with backend_errors():
                                    result = await b.backend.write(stream, aiter(guarded))
                                written = result.offset
                    finally:
                        guarded.close()  # a backend may stop reading before the body's end
                    _check_received(guarded, written, content_length, md5, content_md5)
                    if crc is not None and crc.value != crc32:
                        raise ChecksumMismatch("CRC32 mismatch")
                    if collector is not None and md5 is None:
                        assert content_md5 is not None  # checked by the store's write
                        offer(content_md5.hex())
                    record.length = record.offset = written
                    if running is not None and running.offset == written:
                        # else an assembly reads the part back
                        digests.keep(record, running, written)  # an assembly starts from it
                        digests.conclude(record, running)
                    if link is not None:
                        link.seal(record, written)
                    if result is not None:
                        record.backend_state = result.state
                        with backend_errors():  # verified: now sealed
                            record.backend_state = await b.backend.finish_stream(
                                ledger.stream(record)
                            )
                    elif part_state is not None:
                        record.backend_state = part_state
                    record.status = Status.COMPLETE
                    record.extra.update(info() if info is not None else {})
                    if md5 is not None:
                        etag = md5.hexdigest()
                    else:  # checked by the store against the client's: the same MD5
                        assert content_md5 is not None
                        etag = content_md5.hex()
                    mark: dict[str, Any] = {"etag": etag, "putTime": int(ledger.now())}
                    if joined is not None:
                        mark["direct"] = True
                        mark["joins"] = [[p.number, p.etag] for p, _ in joined.parts]
                    record.extra[_MARK].update(mark)
                    await ledger.save(record)
                    if collector is not None:
                        await self._joining.hold(
                            pid, mark["etag"], collector, b.backend.context.budget
                        )
                    for _, joined_record in joined.parts if joined is not None else ():
                        self._joining.joined(joined_record.id)
                    if link is not None:
                        await self._chaining.hold(pid, link, b.backend.context.budget)
                except BaseException:
                    await asyncio.shield(self._drop(record, result))
                    raise
            if result is not None and result.after_commit is not None:
                try:
                    await result.after_commit()
                except Exception:  # leftovers are swept later; the part stands
                    log.warning("cleanup after part %s failed", pid, exc_info=True)
            part = _part_of(record)
            assert part is not None
        if link is not None:
            await self._chain(session, number, link)
        return part

    async def _sent_again_unchanged(
        self,
        pid: str,
        body: AsyncIterator[bytes],
        content_length: int | None,
        content_md5: bytes | None,
        crc32: int | None,
    ) -> Part | None:
        """A stored part sent again with the bytes it has (its Content-MD5 and
        length the stored part's, its body matching them: an SDK resuming
        after an answer it did not get) is answered from its record, not
        stored again: a later part may hold its bytes already (joined to
        them), and a second copy in another grouping would leave the session
        with store parts no completion can use. None: not such a part (its
        body unread)."""
        if content_md5 is None or content_length is None or crc32 is not None:
            return None
        old = await self.ledger.state.get(pid)
        part = _part_of(old) if old is not None else None
        if part is None or part.etag != content_md5.hex() or part.size != content_length:
            return None
        assert old is not None
        async with self.ledger.locks.hold(pid) as lease:
            current = await self.ledger.state.get(pid)
            if current is None or current.version != old.version:
                return None  # replaced meanwhile: stored as any part
            md5 = hashlib.md5()
            guarded = GuardedBody(body, limit=content_length, lease=lease, hashers=[md5])
            try:
                async for _ in guarded:
                    pass
            finally:
                guarded.close()
            _check_received(guarded, guarded.received, content_length, md5, content_md5)
        return part

    async def _chain(self, session: Session, number: int, link: Link) -> None:
        """Carry the session's SHA-256 chain on from part ``number``
        (``chaining.py``): a failure only leaves it broken."""
        try:
            await self._chaining.extend(lambda n: part_id(session.id, n), number, link)
        except Exception as exc:
            log.info("session %s: chain after part %d not carried (%s)", session.id, number, exc)

    async def _joinable(
        self, session: Session, b: Bucket, number: int, length: int | None
    ) -> multipart_direct.Earlier | None:
        """Whether part ``number`` goes into the object's upload, and joined
        to which earlier parts (None: it is a stream of its own). It goes
        there when, with the short parts before it back to the upload's last
        stored part (or part 1), it reaches the store's minimum part: those
        parts are joined to it. A gap (a part missing or still arriving)
        before them keeps them apart: joined, they would strand it. A short
        part first waits for the part before it to be received if this
        process is receiving that one (the SDKs send three at a time) —
        unless that one waits to join the part before it
        (``Joining.waits_to_join``); a part received and still being stored
        is joined from its bytes in memory."""
        if session.direct is None or length is None:
            return None
        limits = b.backend.limits
        if limits.max_parts and number > limits.max_parts:
            return None
        minimum = max(1, limits.min_part_size)
        joined: list[tuple[Part, UploadRecord]] = []
        anchored = True
        received: dict[str, list[bytes]] = {}
        for n in range(number - 1, max(0, number - 1 - _MAX_JOINED), -1):
            pid = part_id(session.id, n)
            early = None
            if length < minimum:
                if self._joining.is_going_direct(pid):
                    break  # it will be the upload's last stored part before this one
                if n == number - 1:
                    self._joining.waits_to_join(part_id(session.id, number), pid, minimum)
                early = await self._joining.settled(pid)
            record = await self.ledger.state.get(pid)
            part = _part_of(record) if record is not None else None
            if early is not None and record is not None:  # received, still being stored
                part = Part(n, pid, early.size, early.etag, int(self.ledger.now()), {})
                received[pid] = early.chunks
            if part is None:  # missing, or still arriving
                anchored = False
                break
            if part.direct:
                break
            assert record is not None
            joined.insert(0, (part, record))
        else:  # part 1 reached (or too many short parts before it)
            anchored = number - 1 <= _MAX_JOINED
        if not anchored:
            return self._earlier(b, []) if length >= minimum and not joined else None
        earlier = sum(p.size for p, _ in joined)
        if earlier + length < minimum or earlier > _MAX_JOINED_BYTES:
            return None
        return self._earlier(b, joined, received)

    def _earlier(
        self,
        b: Bucket,
        joined: list[tuple[Part, UploadRecord]],
        received: dict[str, list[bytes]] | None = None,
    ) -> multipart_direct.Earlier:
        return multipart_direct.Earlier(self.ledger, self._joining, b, joined, received or {})

    async def _drop(self, record: UploadRecord, result: WriteResult | None) -> None:
        """A part that failed: its bytes go, its id answers as gone. If the
        store cannot drop them now, the record stays and the sweeper does."""
        b = self.ledger.bucket(record.bucket)
        try:
            if result is not None:
                if result.rollback is not None:
                    await result.rollback()  # its pieces are gone; the saved state stands
                else:  # the store kept what arrived: discard from where the write ended
                    record.backend_state, record.offset = result.state, result.offset
            await b.backend.discard_stream(self.ledger.stream(record))
            self.ledger.tombstone(record, Status.TERMINATED)
            await self.ledger.state.save(record)
        except Exception as exc:
            log.warning(
                "could not drop the failed part %s (%s: %s); the sweeper will",
                record.id,
                type(exc).__name__,
                exc,
            )

    async def parts(self, session: Session, numbers: Sequence[int]) -> list[Part | None]:
        """The complete parts of these numbers (None where there is none)."""
        ids = [part_id(session.id, n) for n in numbers]
        records = await self.ledger.state.get_many(ids)
        return [_part_of(r) if r is not None else None for r in records]

    async def list_parts(
        self, session: Session, after: int = 0, limit: int = 1000
    ) -> tuple[list[Part], bool]:
        """Complete parts numbered above ``after``, ascending, at most
        ``limit``; and whether more follow."""
        found: list[Part] = []
        number = after + 1
        while number <= MAX_PART_NUMBER and len(found) <= limit:
            numbers = list(range(number, min(number + _LIST_BATCH, MAX_PART_NUMBER + 1)))
            found += [p for p in await self.parts(session, numbers) if p is not None]
            number = numbers[-1] + 1
        return found[:limit], len(found) > limit

    # -- completion ---------------------------------------------------------------------
    @asynccontextmanager
    async def completing(
        self, session_id: str, bucket: str, protocol: str, admit: Admit | None = None
    ) -> AsyncIterator[Session]:
        """Hold the session while it is completed or aborted (one at a time)."""
        async with self.ledger.locks.hold(session_id):
            yield await self.session(session_id, bucket, protocol, admit)

    async def complete(
        self,
        session: Session,
        parts: Sequence[Part],
        key: str,
        *,
        metadata: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        meta: ObjectMeta | None = None,
    ) -> None:
        """The object ``key`` from ``parts`` in order; the session ends.
        Call it inside ``completing``."""
        if session.direct is not None and any(p.direct for p in parts):
            try:
                used = await multipart_direct.complete(
                    self.ledger, session, parts, key, metadata, extra, meta, self._joining
                )
            except HookRejected:  # the parts are discarded: so is the store's upload
                await self.end(session)
                raise
            await self.end(session, completed=True)
            self.ledger.later(multipart_direct.release(self.ledger, used))
            return
        ids = [p.id for p in parts]
        await self.assemble(session.protocol, session.bucket, ids, key, metadata, extra, meta)
        await self.end(session)

    async def end(self, session: Session, completed: bool = False) -> None:
        """The session ends (its id is gone from now on); its parts stay
        until completed, discarded or expired. Unless ``completed``, the
        object's upload in the store (if any) is dropped with the parts in it."""
        self._joining.drop_session(session.id)
        self._chaining.drop_session(session.id)
        record = await self.ledger.state.get(session.id)
        if record is not None and record.status is Status.ACTIVE:
            self.ledger.tombstone(record, Status.EXPIRED)
            await self.ledger.save(record)
        if session.direct is not None and not completed:
            b = self.ledger.bucket(session.bucket)
            try:
                await b.backend.abort_object(session.direct)
            except BackendError as exc:  # a lifecycle rule or the sweeper's retry
                log.warning("could not abort the upload of session %s (%s)", session.id, exc)

    async def abort(
        self, session_id: str, bucket: str, protocol: str, admit: Admit | None = None
    ) -> None:
        """End the session and drop every part it holds."""
        async with self.completing(session_id, bucket, protocol, admit) as session:
            await self.end(session)
            ids = [part_id(session.id, n) for n in range(1, MAX_PART_NUMBER + 1)]
            records = await self.ledger.state.get_many(ids)
            live = (Status.ACTIVE, Status.COMPLETE)
            await self.discard([r.id for r in records if r is not None and r.status in live])

    # -- streams in a known order -------------------------------------------------------
    async def assemble(
        self,
        protocol: str,
        bucket: str,
        ids: Sequence[str],
        key: str,
        metadata: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        meta: ObjectMeta | None = None,
    ) -> None:
        """The object ``key`` from complete streams in order: one is committed
        (no bytes move), several assembled; none makes an empty object."""
        if not ids:
            empty = await self._uploads.create(
                protocol=protocol, bucket=bucket, key=None, length=0, kind=Kind.PART
            )
            ids = [empty.id]
        if len(ids) == 1:
            await self._assembly.commit_part(ids[0], key, metadata=metadata, extra=extra, meta=meta)
            return
        await self._assembly.create_assembly(
            protocol=protocol,
            bucket=bucket,
            key=key,
            parts=ids,
            metadata=metadata,
            allow_unfinished=False,
            extra=extra,
            meta=meta,
        )

    async def discard(self, ids: Sequence[str]) -> None:
        """Drop streams that will not be used (best effort: the sweeper
        drops what is left at its expiry)."""
        for stream_id in ids:
            self._joining.drop(stream_id)
            self._chaining.drop(stream_id)
            try:
                await self._expiry.terminate(stream_id)
            except UploadError as exc:
                log.info("discarding %s: %s", stream_id, exc)
