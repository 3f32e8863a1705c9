"""``S3Backend``: streams as multipart uploads, objects as S3 objects.

See the package docstring (``backends/s3/__init__.py``) for the layout in
the bucket and the permissions needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, ClassVar

from backends import bodies
from backends.base import (
    JSON,
    Backend,
    BackendConfig,
    BackendContext,
    Capability,
    Limits,
    ObjectInfo,
    ObjectMeta,
    StreamInfo,
    WriteResult,
)
from backends.concurrency import bounded
from backends.errors import (
    BackendError,
    BackendUnavailable,
    DigestMismatch,
    InvalidState,
    NotFound,
)
from backends.s3.config import PresignedUrls, PublicUrls, S3Config
from backends.s3.copy import Copier, Source
from backends.s3.integrity import Integrity
from backends.s3.object_parts import ObjectParts, is_object_part
from backends.s3.parts import Forward, ForwardedBody, PartPipe, cancel_forward, fetch_pieces
from backends.s3.preopen import PreOpener
from backends.s3.state import Piece, StreamState
from backends.s3.store import Store, crc32_of, s3_code
from backends.urls import key_path

_MAX_PRESIGN_TTL = 7 * 86400  # SigV4 presigned URLs live at most a week
#: characters of their ids streams share for one listing of their tails (64 random bits)
_SHARED_ID = 16


def _type_and_sha256(meta: ObjectMeta | None) -> tuple[str | None, str | None]:
    return (meta.content_type, meta.sha256) if meta is not None else (None, None)


class S3Backend(Backend):
    type_name: ClassVar[str] = "s3"
    config_model: ClassVar[type[BackendConfig]] = S3Config
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.OBJECT_PARTS})

    def __init__(self, name: str, config: BackendConfig, context: BackendContext) -> None:
        super().__init__(name, config, context)
        assert isinstance(config, S3Config)
        self.cfg = config
        self.store = Store(config, self.telemetry)
        self.integrity = Integrity(name, self.store, config, self.telemetry)
        self.copier = Copier(self.store, config, context.budget, self.integrity)
        self.preopen = PreOpener(self.store, config.preopen_parts, config.preopen_timeout)
        self._background: set[asyncio.Task[None]] = set()
        self._background_slots = asyncio.Semaphore(config.max_concurrency)
        self.object_parts = ObjectParts(
            self.store, config, context.budget, self.integrity, self.telemetry
        )

    @property
    def limits(self) -> Limits:
        return Limits(
            min_part_size=self.cfg.min_part_size,
            max_parts=self.cfg.max_parts,
            max_object_size=self.cfg.object_limit,
            partial_complete=self.integrity.partial_complete,
            create_if_absent=self.cfg.part_size if self.integrity.if_none_match else 0,
            complete_if_absent=self.integrity.complete_if_none_match,
            checks_part_md5=self.integrity.part_etag_md5,
        )

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        await self.store.open()
        try:
            await self.store.check_bucket(self.cfg.create_bucket)
            # what the store really checks and allows (backends/s3/integrity.py)
            self.cfg = self.store.config = self.copier.config = await self.integrity.start()
            self.object_parts.config = self.cfg
        except BaseException:
            await self.integrity.close()  # the probe's clean-up
            await self.store.close()
            raise

    def describe(self) -> str:
        """For the start-up summary: how the bytes are checked, as probed."""
        return f"integrity={self.integrity.mode or 'not probed'}"

    @property
    def fallbacks(self) -> int:
        """Requests made again in another form since start (``integrity``)."""
        return sum(self.integrity.fallbacks.values())

    async def settled(self) -> None:
        """Wait for the clean-ups nobody waits for: the probe's temporaries,
        the tail pieces listed after commits."""
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.integrity.cleaned()

    async def close(self) -> None:
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.integrity.close()
        await self.preopen.close()
        await self.store.close()

    async def ping(self) -> None:
        await self.store.ping()

    # -- names -------------------------------------------------------------------
    def _stream_key(self, stream_id: str) -> str:
        return f"{self.cfg.temp_prefix}streams/{stream_id}"

    def _tail_prefix(self, stream_id: str) -> str:
        return f"{self.cfg.temp_prefix}tails/{stream_id}/"

    def _piece(self, stream_id: str, start: int, end: int) -> Piece:
        return Piece(f"{self._tail_prefix(stream_id)}{start:015d}-{end:015d}", start, end)

    # -- streams -------------------------------------------------------------------
    def checks_write_md5(self, stream: StreamInfo) -> bool:
        """A temporary small stream written whole by one write is one
        PutObject (forwarded as it arrives): its ETag is compared with the
        client's MD5 where ETags are MD5s (``Findings.part_etag_md5``)."""
        return self.integrity.part_etag_md5 and self._one_put(stream)

    def _one_put(self, stream: StreamInfo) -> bool:
        """A temporary small stream written whole by this write: one PutObject."""
        return (
            stream.key is None
            and stream.offset == 0
            and stream.incoming is not None
            and stream.incoming == stream.length
            and self._small(stream)
        )

    def _small(self, stream: StreamInfo) -> bool:
        """A stream no longer than a part is one PutObject (``_write_small``):
        it would only ever be one part, and a multipart upload costs two more
        requests (and, on some stores, one more copy of its bytes)."""
        return stream.length is not None and stream.length <= self.cfg.part_size

    async def create_stream(self, stream: StreamInfo) -> JSON:
        # a small stream is one PutObject on its key as its last bytes arrive:
        # where the object must wait for finish_stream, it goes elsewhere
        final = stream.key if stream.early_object or not self._small(stream) else None
        key = final or self._stream_key(stream.id)
        part_size = self.cfg.part_size_for(stream.length)
        if self._small(stream) or stream.length is None:
            # no multipart upload yet: a small stream never needs one, a
            # stream of unknown length opens it when a part's worth arrives
            st = StreamState("", key, part_size, temporary=final is None)
            return st.to_json()
        # written on its final key: the object's type is fixed now (``commit``)
        checksum = self.store.checksum
        upload_id = await self.store.create_multipart(
            key, stream.content_type if final else None, checksum
        )
        st = StreamState(upload_id, key, part_size, temporary=final is None, checksum=checksum)
        if stream.length is not None and stream.length >= part_size:
            self.preopen.open(stream.id, key, upload_id, 1, part_size, st.checksum is not None)
        return st.to_json()

    async def write(self, stream: StreamInfo, body: AsyncIterator[bytes]) -> WriteResult:
        old = StreamState.from_json(stream.state)
        old.check_offset(stream.offset)
        if stream.if_absent and not self._if_absent(stream, old):
            raise BackendError("this write cannot make its object only where there is none")
        if stream.md5 is not None and not (self._one_put(stream) and old.temporary):
            raise BackendError("this write cannot check the MD5 it is given")
        if old.single and self._small(stream):
            if not (stream.early_object or old.temporary):
                # created on its key (its length unknown then, or its object
                # approved then) but its object must now wait for the core's
                # approval (insert-only, a pre-finish hook, a digest declared
                # since): its one PutObject goes to a temporary key, moved by
                # commit; a refusal deletes it
                old = old.copy(key=self._stream_key(stream.id), temporary=True)
            return await self._write_small(stream, old, body)
        if not old.single:
            return await self._write_parts(stream, old, body)
        # not a multipart upload yet: open one only if a part's worth arrives
        arrived = await bodies.arrived(body)
        if arrived is None:
            return WriteResult(offset=stream.offset, state=stream.state)
        limit = old.part_size - old.tail_size
        await self.context.budget.acquire(limit)
        try:
            head, more = await _take(arrived, limit)
            if more is None:
                received = sum(len(c) for c in head)
                end = stream.offset + received
                tail = await self._store_tail(stream.id, old.tail, head, None, end)
                return self._result(stream.id, old, old.copy(tail=tail))
        finally:
            self.context.budget.release(limit)
        content_type = None if old.temporary else stream.content_type
        checksum = self.store.checksum
        upload_id = await self.store.create_multipart(old.key, content_type, checksum)
        opened = old.copy(upload_id=upload_id, checksum=checksum)
        try:
            result = await self._write_parts(stream, opened, bodies.chain(head, more))
        except BackendUnavailable as exc:
            if exc.partial is None:  # no part stored: nothing refers to the upload
                await self._abort_quietly(opened)
            raise
        except BaseException:
            await asyncio.shield(self._abort_quietly(opened))
            raise
        discard = result.rollback

        async def rollback() -> None:
            if discard is not None:
                await discard()
            await self._abort_quietly(opened)

        result.rollback = rollback
        return result

    async def _abort_quietly(self, st: StreamState) -> None:
        with contextlib.suppress(BackendError):
            await self.store.abort(st.key, st.upload_id)

    async def _write_parts(
        self, stream: StreamInfo, old: StreamState, body: AsyncIterator[bytes]
    ) -> WriteResult:
        st = old.copy()
        if not st.parts and stream.length is not None:  # a length declared late
            st.part_size = max(st.part_size, self.cfg.part_size_for(stream.length))
        checksum = st.checksum is not None
        announced = stream.incoming if self.store.forwards(checksum) else None
        number = len(st.parts) + 1
        opened = self.preopen.take(stream.id, st.key, st.upload_id, number, st.part_size, checksum)
        if opened is not None and (st.tail or announced is None or announced < st.part_size):
            cancel_forward(opened[1])  # this write does not fill that part
            opened = None
        pipe = PartPipe(
            self.store, st.key, st.upload_id, st.part_size,
            first_number=number, concurrency=self.cfg.max_concurrency,
            budget=self.context.budget, prefix=st.tail, hashing=self.cfg.content_md5,
            expected_end=None if announced is None else stream.offset + announced,
            preopened=opened, checksum=checksum, fallback=self.integrity.part_fallback,
        )  # fmt: skip
        received = 0
        refused: BackendUnavailable | None = None
        try:
            async for chunk in body:
                if pipe.failure is not None:
                    break  # the store failed: stop reading, keep what it holds
                try:
                    await pipe.feed(chunk)
                except BackendUnavailable as exc:  # no memory for the next part
                    refused = exc
                    received += len(chunk)  # some of it may be in parts sent
                    break
                received += len(chunk)
            parts, failure = await pipe.results()
            leftover, md5 = await pipe.take_leftover()
        except BaseException:
            await pipe.cancel()
            raise
        try:
            if received == 0:
                return WriteResult(offset=stream.offset, state=stream.state)
            st.parts.extend(etag for etag, _ in parts)
            st.checksums.extend(crc for _, crc in parts)
            if parts:
                st.tail = []
            if failure is not None:
                raise failure
            if refused is not None:  # the parts stored stay (``partial``)
                raise refused
            if leftover:
                end = stream.offset + received
                kept = pipe.pending_prefix
                st.tail = await self._store_tail(stream.id, kept, leftover, md5, end)
        except BackendUnavailable as exc:
            if parts:
                exc.partial = self._result(stream.id, old, st)
            raise
        finally:
            await pipe.close()
        self._preopen_next(stream, st)
        return self._result(stream.id, old, st)

    def _if_absent(self, stream: StreamInfo, old: StreamState) -> bool:
        """Whether this write is the one PutObject on the stream's key, on a
        store that honours If-None-Match: * (``Limits.create_if_absent``)."""
        return (
            self.integrity.if_none_match
            and old.single
            and self._small(stream)
            and stream.early_object
            and not old.temporary
        )

    async def _write_small(
        self, stream: StreamInfo, old: StreamState, body: AsyncIterator[bytes]
    ) -> WriteResult:
        """A stream no longer than a part: the write that brings it to its
        length stores the whole object with one PutObject (after the bytes of
        earlier, shorter writes, kept as tail pieces); a shorter write adds a
        tail piece. No multipart upload, no part copied back and forth."""
        assert stream.length is not None
        arrived = await bodies.arrived(body)
        if arrived is None:
            return WriteResult(offset=stream.offset, state=stream.state)
        room = stream.length - stream.offset
        await self.context.budget.acquire(room)
        forward = self._forward_small(stream, old)
        try:
            chunks: list[bytes | memoryview] = []
            received = 0
            async for chunk in arrived:
                chunks.append(chunk)
                received += len(chunk)
                if received > room:
                    raise InvalidState(f"a write past the stream's length {stream.length}")
                if forward is not None:
                    forward[0].queue.put_nowait(chunk)
            end = stream.offset + received
            if end < stream.length:
                tail = await self._store_tail(stream.id, old.tail, chunks, None, end)
                return self._result(stream.id, old, old.copy(tail=tail))
            etag = None
            if forward is not None:
                sent, task = forward
                forward = None
                sent.queue.put_nowait(None)
                etag = await self._forwarded(task, sent.trailer)
            if etag is None:
                earlier = await fetch_pieces(self.store, old.tail, self.cfg.max_concurrency)
                content_type, metadata = None, None
                if not old.temporary:  # the object itself: its type, and its digest now known
                    content_type = stream.content_type
                    sha256 = stream.sha256() if stream.sha256 is not None else None
                    metadata = {"sha256": sha256} if sha256 else None
                etag = await self.store.put(
                    old.key,
                    [*earlier, *chunks],
                    content_type=content_type,
                    metadata=metadata,
                    if_absent=stream.if_absent,
                )
        finally:
            if forward is not None:  # the body ended short, or failed
                cancel_forward(forward[1])
            self.context.budget.release(room)
        if stream.md5 is not None:
            # (refused even if a re-probe found since that ETags are no MD5s)
            try:
                self.integrity.check_etag("put_object", old.key, etag, stream.md5)
            except DigestMismatch:
                with contextlib.suppress(BackendError):
                    await self.store.delete(old.key)
                raise
        return self._small_result(stream, old)

    def _small_result(self, stream: StreamInfo, old: StreamState) -> WriteResult:
        assert stream.length is not None
        result = self._result(stream.id, old, old.copy(tail=[], sealed=True, size=stream.length))
        if old.temporary:  # not committed: nothing will refer to the object

            async def rollback() -> None:
                await self.store.delete(old.key)

            result.rollback = rollback
        return result

    def _forward_small(self, stream: StreamInfo, old: StreamState) -> Forward | None:
        """A temporary small stream written whole by one request (a short
        Qiniu v2 part waiting to be joined) goes to the store as its bytes
        arrive: stored as soon as received, instead of received and then
        stored. Its CRC32 goes in a trailer — unless its ETag is checked
        against the client's MD5 (``stream.md5``), which checks the same
        bytes end to end. Cancelled (the store keeps nothing) if the body
        ends short; the object itself (its digest is metadata, known only
        at the end) is sent once its bytes are all here."""
        trailer = stream.md5 is None
        if not (
            old.temporary
            and stream.offset == 0
            and not old.tail
            and stream.incoming == stream.length
            and self.store.forwards(trailer)
        ):
            return None
        assert stream.length is not None
        body = ForwardedBody(stream.length, trailer=trailer)
        task = asyncio.get_running_loop().create_task(self.store.put_streaming(old.key, body))
        return body, task

    async def _forwarded(self, task: asyncio.Task[str], trailer: bool) -> str | None:
        """The ETag of the object the forwarded PutObject stored; if none,
        the fallback is told why (as a forwarded part's: a refusal of a body
        with a trailer is the trailer's until the re-probe says otherwise)
        and the object is sent from its buffer."""
        try:
            return await task
        except BackendError as exc:
            refused = trailer and not isinstance(exc, BackendUnavailable)
            why = "trailer_refused" if refused else "forward_failed"
            self.integrity.forward_fallback("put_object", why, s3_code(exc))
            return None

    def _preopen_next(self, stream: StreamInfo, st: StreamState) -> None:
        """A write that ended on a part boundary: open the next part's
        UploadPart for the next write (``backends/s3/preopen.py``)."""
        if st.tail or not st.parts:
            return
        if stream.length is not None and stream.length - st.parts_end < st.part_size:
            return  # the rest becomes a tail, copied into the last part
        number, checksum = len(st.parts) + 1, st.checksum is not None
        self.preopen.open(stream.id, st.key, st.upload_id, number, st.part_size, checksum)

    async def _store_tail(
        self,
        stream_id: str,
        kept: list[Piece],
        leftover: list[bytes | memoryview],
        md5: bytes | None,
        end: int,
    ) -> list[Piece]:
        """Store the bytes past the last part as a new piece after ``kept``
        (merging them all into one piece when there would be too many)."""
        size = sum(len(c) for c in leftover)
        earlier: list[bytes | memoryview] = []
        if len(kept) + 1 > self.cfg.max_tail_pieces:
            earlier = [*await fetch_pieces(self.store, kept, self.cfg.max_concurrency)]
            size += sum(p.size for p in kept)
            kept, md5 = [], None
        piece = self._piece(stream_id, end - size, end)
        await self.store.put(piece.key, [*earlier, *leftover], md5)
        return [*kept, piece]

    def _result(self, stream_id: str, old: StreamState, new: StreamState) -> WriteResult:
        stale = [p for p in old.tail if p not in new.tail]
        added = [p for p in new.tail if p not in old.tail]

        async def after_commit() -> None:
            await self._delete_keys([p.key for p in stale])

        async def rollback() -> None:
            await self._delete_keys([p.key for p in added])

        return WriteResult(
            offset=new.size if new.sealed else new.parts_end + new.tail_size,
            state=new.to_json(),
            after_commit=after_commit if stale else None,
            rollback=rollback,
        )

    async def finish_stream(self, stream: StreamInfo) -> JSON:
        self.preopen.drop(stream.id)
        st = StreamState.from_json(stream.state)
        if st.sealed:
            return stream.state
        st.check_offset(stream.offset)
        sealed = st.copy(sealed=True, size=stream.offset)
        if st.single:
            return await self._finish_plain(stream, st, sealed)
        try:
            if stream.offset == 0:  # S3 wants at least one part: a plain object
                await self.store.abort(st.key, st.upload_id)
                return await self._finish_plain(stream, st, sealed)
            if st.tail:
                etag, crc = await self._last_part(st)
                sealed.parts.append(etag)
                sealed.checksums.append(crc)
            checksums = sealed.checksums if sealed.checksum else None
            await self.integrity.complete(st.key, st.upload_id, sealed.parts, checksums)
        except BackendError:
            if not await self._completed_before(st, stream.offset):
                raise
        return sealed.to_json()

    async def _finish_plain(self, stream: StreamInfo, st: StreamState, sealed: StreamState) -> JSON:
        """A stream without parts becomes a plain object: a temporary's one
        tail piece is that object as it is; else the store copies the piece
        onto the key, or the pieces are joined there (PutObject)."""
        if st.temporary and len(st.tail) == 1:
            return sealed.copy(key=st.tail[0].key, tail=[]).to_json()
        content_type = None if st.temporary else stream.content_type
        if len(st.tail) == 1:
            await self.store.copy(st.tail[0].key, st.key, content_type)
        else:
            data = await fetch_pieces(self.store, st.tail, self.cfg.max_concurrency)
            await self.store.put(st.key, data, content_type=content_type)
        return sealed.to_json()  # its pieces, named still, are deleted at commit

    async def _completed_before(self, st: StreamState, size: int) -> bool:
        """Did an earlier ``finish_stream`` complete this upload (the gateway
        then died before saving the state)? The upload is gone and its object
        has the stream's size."""
        try:
            if await self.store.upload_exists(st.key, st.upload_id):
                return False
            info = await self.store.head(st.key)
        except BackendError:
            return False
        return info is not None and info.size == size

    async def _last_part(self, st: StreamState) -> tuple[str, str]:
        number = len(st.parts) + 1
        if len(st.tail) == 1 and self.store.part_copy:  # no bytes through the gateway
            piece = st.tail[0]
            try:
                return await self.store.upload_part_copy(
                    st.key, st.upload_id, number, piece.key, 0, None
                )
            except BackendError as exc:
                if not self.integrity.copy_refused(exc, "the last part is sent from its pieces"):
                    raise
        size = st.tail_size
        await self.context.budget.acquire(size)
        try:
            data = await fetch_pieces(self.store, st.tail, self.cfg.max_concurrency)
            crc = crc32_of(data) if st.checksum else None
            etag = await self.store.upload_part(st.key, st.upload_id, number, data, None, crc)
            return etag, crc or ""
        finally:
            self.context.budget.release(size)

    def _sealed(self, stream: StreamInfo) -> StreamState:
        st = StreamState.from_json(stream.state)
        if not st.sealed:
            raise InvalidState(f"stream {stream.id} is not finished")
        return st

    async def commit(
        self, stream: StreamInfo, key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        # a stream written on ``key`` itself keeps the type it was created with
        st = self._sealed(stream)
        if key != st.key:
            sources = [Source(st.key, st.size)] if st.size else []
            await self.copier.make(sources, key, *_type_and_sha256(meta))
            await self.store.delete(st.key)
        await self._delete_keys([p.key for p in st.tail])
        if stream.one_write:  # no other write: no piece unnamed
            return ObjectInfo(key=key, size=st.size)
        # pieces the saved state no longer names (consumed by the last part,
        # or stored by a write whose state was never saved) are listed after
        # the answer: on Ceph RGW a listing costs more than storing a 1 MiB
        # part (measured in commit 76cf32e); a form file's listing was 11 %
        # of the gateway's CPU on moto
        self._in_background(self._delete_tails(stream.id), "deleting tail pieces")
        return ObjectInfo(key=key, size=st.size)

    def _in_background(self, job: Coroutine[Any, Any, None], what: str) -> None:
        """Clean-up nobody waits for (a few at a time; awaited by ``close``)."""

        async def run() -> None:
            async with self._background_slots:
                try:
                    await job
                except BackendError as exc:
                    self.telemetry.warn(
                        f"background:{what}", "backend %s: %s failed: %s", self.name, what, exc
                    )

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def assemble(
        self, streams: Sequence[StreamInfo], key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        sources = []
        for stream in streams:
            st = self._sealed(stream)
            if st.size:
                sources.append(Source(st.key, st.size))
        await self.copier.make(sources, key, *_type_and_sha256(meta))
        return ObjectInfo(key=key, size=sum(s.size for s in sources))

    async def copy_object(
        self, source: str, key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        # CopyObject; UploadPartCopy past max_part_size (copy-through where the
        # store has no UploadPartCopy): the copier's plan for one source
        info = await self.store.head(source)
        if info is None:
            raise NotFound(source)
        sources = [Source(source, info.size)] if info.size else []
        await self.copier.make(sources, key, *_type_and_sha256(meta))
        return ObjectInfo(key=key, size=info.size)

    async def discard_stream(self, stream: StreamInfo) -> None:
        await self.discard_streams([stream])

    async def discard_streams(self, streams: Sequence[StreamInfo]) -> None:
        """Their uploads aborted, their temporary objects and tail pieces
        deleted — the pieces no saved state names found by listing, once for
        streams whose ids share a prefix (a session's parts), not once each
        (a listing costs the store more than a 1 MiB PutObject)."""
        keys: set[str] = set()
        listed: list[str] = []
        for stream in streams:
            self.preopen.drop(stream.id)
            if is_object_part(stream.state):
                continue  # it goes with its object's upload (``object_parts.py``)
            st = StreamState.from_json(stream.state) if stream.state else None
            if st is not None:
                if not st.sealed:
                    if not st.single:
                        await self.store.abort(st.key, st.upload_id)
                elif st.temporary:
                    keys.add(st.key)
                keys.update(p.key for p in st.tail)
            listed.append(stream.id)
        keys.update(await self._stray_tails(listed))
        await self._delete_keys(sorted(keys))

    async def _delete_tails(self, stream_id: str) -> None:
        await self._delete_keys(sorted(set(await self._stray_tails([stream_id]))))

    async def _stray_tails(self, stream_ids: Sequence[str]) -> list[str]:
        """The tail pieces stored for these streams: one listing of the
        prefix their ids share if they share ``_SHARED_ID`` characters (ids
        of one session: little else is under it), else one per stream."""
        prefixes = [self._tail_prefix(i) for i in stream_ids]
        shared = os.path.commonprefix(prefixes)  # noqa: RUF071 (characters of ids, not paths)
        if len(prefixes) > 1 and len(shared) >= len(self._tail_prefix("")) - 1 + _SHARED_ID:
            wanted = tuple(prefixes)
            return [k for k in await self.store.list_keys(shared) if k.startswith(wanted)]
        return [k for prefix in prefixes for k in await self.store.list_keys(prefix)]

    async def _delete_keys(self, keys: list[str]) -> None:
        await bounded(keys, self.store.delete, self.cfg.max_concurrency)

    # -- objects written in parts (``object_parts.py``) ----------------------------
    async def open_object(self, key: str, meta: ObjectMeta | None = None) -> JSON:
        return await self.object_parts.open(key, meta)

    async def write_object_part(
        self,
        upload: JSON,
        number: int,
        body: AsyncIterator[bytes],
        length: int,
        md5: bytes | None = None,
    ) -> JSON:
        return await self.object_parts.write_part(upload, number, body, length, md5)

    async def complete_object(
        self,
        upload: JSON,
        parts: Sequence[tuple[int, JSON]],
        last: tuple[int, StreamInfo] | None = None,
        meta: ObjectMeta | None = None,
        if_absent: bool = False,
    ) -> ObjectInfo:
        return await self.object_parts.complete(upload, parts, last, meta, if_absent)

    async def abort_object(self, upload: JSON) -> None:
        await self.object_parts.abort(upload)

    # -- objects -------------------------------------------------------------------
    async def stat(self, key: str) -> ObjectInfo | None:
        return await self.store.head(key)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async with contextlib.aclosing(self.store.read(key, start, end)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def read_stream(
        self, stream: StreamInfo, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes of a finished stream, or of an unfinished one's tail: bytes
        already sent as multipart parts cannot be read before it finishes."""
        st = StreamState.from_json(stream.state)
        end = stream.offset if end is None else min(end, stream.offset)
        if st.sealed:
            async with contextlib.aclosing(self.store.read(st.key, start, end)) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        if start < st.parts_end and start < end:
            raise InvalidState("bytes in multipart parts are readable once the stream finishes")
        for piece in st.tail:
            first, last = max(start, piece.start), min(end, piece.end)
            if first >= last:
                continue
            ranged = self.store.read(piece.key, first - piece.start, last - piece.start)
            async with contextlib.aclosing(ranged) as chunks:
                async for chunk in chunks:
                    yield chunk

    async def delete_object(self, key: str) -> None:
        await self.store.delete(key)

    async def object_url(self, key: str, ttl: int, inline: bool = False) -> str | None:
        url = self.cfg.url
        if isinstance(url, PresignedUrls):
            seconds = int(url.ttl) if url.ttl else ttl
            # the signed response-content-disposition override (S3 cannot add nosniff)
            disposition = None if inline else "attachment"
            return await self.store.presign(
                key, max(1, min(seconds, _MAX_PRESIGN_TTL)), disposition
            )
        if isinstance(url, PublicUrls):
            return f"{url.base_url.rstrip('/')}/{key_path(key)}"
        return None


async def _take(
    body: AsyncIterator[bytes], limit: int
) -> tuple[list[bytes | memoryview], AsyncIterator[bytes] | None]:
    """The first chunks of ``body`` up to ``limit`` bytes (or one chunk
    past), and the rest of the body, or None if it ended before ``limit``."""
    head: list[bytes | memoryview] = []
    received = 0
    async for chunk in body:
        head.append(chunk)
        received += len(chunk)
        if received >= limit:
            return head, body
    return head, None
