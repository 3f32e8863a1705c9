"""Cutting a byte stream into numbered parts of a multipart upload.

``PartPipe`` fills one part at a time. When the caller announces how far the
bytes will go (``expected_end``: a request's Content-Length) and a part will
certainly be filled, its UploadPart starts with the first byte and the bytes
are forwarded as they arrive (the part is stored when its last byte is in);
otherwise the part is buffered and uploaded once full. Either way the bytes
stay buffered until the part is stored: a forwarded part that fails is sent
again from the buffer, and one cut short by the body's end is cancelled and
left to the caller as a tail. Finished parts upload in tasks while more
bytes arrive, at most ``concurrency`` at a time; every part buffer is
reserved from the gateway's memory budget before it fills, so memory stays
below ``part_size × (concurrency + 1)`` per stream and below the budget
overall. The first part may start with stored tail pieces, fetched once the
part is full. A buffered part's MD5 is computed while its bytes arrive and
sent as Content-MD5; a forwarded part's is computed in a thread of lower
priority while the store takes its bytes (so that it uses the CPU the store
leaves idle), and compared with the ETag the store returns. When the upload
declared CRC32, every part carries its CRC32 instead (a header, or a trailer
for a forwarded part), which the store verifies: no MD5 is computed then.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from backends.base import MemoryBudget
from backends.concurrency import bounded
from backends.crc import crc32
from backends.errors import BackendError, BackendUnavailable
from backends.s3.state import Piece
from backends.s3.store import Store, crc32_b64, crc32_of, md5_digest

Chunk = bytes | memoryview


async def fetch_pieces(store: Store, pieces: Sequence[Piece], concurrency: int) -> list[bytes]:
    """The bytes of ``pieces``, in order (fetched a few at a time)."""
    return await bounded(pieces, lambda p: store.get_bytes(p.key, p.size), concurrency)


_TRAILER = b"x-amz-checksum-crc32:"
#: the aws-chunked framing around a part's bytes, but for the size line:
#: CRLF, the last (empty) chunk, the trailer with 8 base64 characters, CRLF
_FRAMING = len(b"\r\n0\r\n") + len(_TRAILER) + 8 + len(b"\r\n\r\n")


class ForwardedBody:
    """The body of a forwarded UploadPart: ``length`` bytes, chunks as they
    arrive. With ``trailer`` the bytes go as one aws-chunked chunk followed
    by their CRC32 (computed as they pass). ``read`` exists only to pass the
    SDK's type check; it is never called."""

    def __init__(self, length: int, trailer: bool = False) -> None:
        self.queue: asyncio.Queue[Chunk | None] = asyncio.Queue()
        self.length = length
        self.trailer = trailer
        self._size_line = f"{length:x}\r\n".encode()
        self.crc = 0

    @property
    def wire_length(self) -> int:
        """The request's Content-Length."""
        if not self.trailer:
            return self.length
        return len(self._size_line) + self.length + _FRAMING

    @property
    def checksum(self) -> str:
        """The CRC32 sent in the trailer ("" without one)."""
        return crc32_b64(self.crc) if self.trailer else ""

    def read(self, amount: int = -1) -> bytes:
        raise RuntimeError("a forwarded part body is read asynchronously")

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[Chunk]:
        if self.trailer:
            yield self._size_line
        while (chunk := await self.queue.get()) is not None:
            if self.trailer:
                self.crc = crc32(chunk, self.crc)
            yield chunk
        if self.trailer:
            yield b"\r\n0\r\n" + _TRAILER + self.checksum.encode() + b"\r\n\r\n"


#: a forwarded UploadPart: its body, fed as bytes arrive, and the request
Forward = tuple[ForwardedBody, "asyncio.Task[str]"]
#: a stored part: its ETag and CRC32 (base64; "" unless the upload declared it)
Part = tuple[str, str]
#: told when a forwarded part is sent again from its buffer: why
#: (``trailer_refused``, ``forward_failed``, ``etag_mismatch``) and the store's answer
Fallback = Callable[[str, str], None]


def cancel_forward(task: asyncio.Task[str]) -> None:
    """Abandon a forwarded UploadPart: the connection is closed before the
    body is complete, so the store keeps nothing of it."""
    task.cancel()
    task.add_done_callback(_consume)


def _consume(task: asyncio.Task[str]) -> None:
    if not task.cancelled():
        task.exception()


def _lower_priority() -> None:
    """Run this thread at a lower priority than the event loop's (Linux: a
    thread has its own nice value): a forwarded part's MD5 then takes the CPU
    the store leaves idle instead of slowing the store down (on a machine
    shared with it) while it takes the part."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _HASH_NICE)


_HASH_NICE = 10
#: where forwarded parts are hashed (hashlib releases the GIL)
_HASHERS = ThreadPoolExecutor(
    max_workers=4, thread_name_prefix="s3-part-md5", initializer=_lower_priority
)


class _Hold:
    """Budget held by one part until it is stored; released exactly once."""

    def __init__(self, budget: MemoryBudget, size: int) -> None:
        self.budget, self.size = budget, size

    def release(self) -> None:
        if self.size:
            self.budget.release(self.size)
            self.size = 0


class PartPipe:
    def __init__(
        self,
        store: Store,
        key: str,
        upload_id: str,
        part_size: int,
        *,
        first_number: int,
        concurrency: int,
        budget: MemoryBudget,
        prefix: Sequence[Piece] = (),
        hashing: bool = True,
        expected_end: int | None = None,
        preopened: Forward | None = None,
        checksum: bool = False,
        fallback: Fallback | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.upload_id = upload_id
        self.part_size = part_size
        self.first_number = first_number
        self.concurrency = concurrency
        #: the number of the part being filled
        self.number = first_number
        self._budget = budget
        self._hashing = hashing
        #: the upload declared CRC32: every part is sent with its CRC32
        self._checksum = checksum
        self._fallback = fallback
        #: where the bytes are announced to end (offsets count from part 1's start)
        self._expected_end = expected_end
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[int, asyncio.Task[Part]] = {}
        #: the first failure of a part upload, if any (feeding is pointless then)
        self.failure: BaseException | None = None
        # the part being filled
        self._prefix = list(prefix)
        self._chunks: list[Chunk] = []
        self._filled = sum(p.size for p in self._prefix)
        self._reserved = False
        self._md5: Any = None  # running MD5; None while unfetched pieces lead
        self._crc: int | None = None  # running CRC32 (likewise)
        self._forward: Forward | None = None
        #: an UploadPart of the first part opened before this write (its
        #: headers sent, its fixed cost paid), used if the write fills it
        self._preopened = preopened
        self._reset_part(keep_prefix=True)

    def _reset_part(self, keep_prefix: bool = False) -> None:
        if not keep_prefix:
            self._prefix, self._filled = [], 0
        self._chunks, self._reserved, self._forward = [], False, None
        # with a CRC32 on every part the store verifies it: no MD5 needed
        md5 = self._hashing and not self._checksum and not self._prefix
        self._md5 = hashlib.md5() if md5 else None
        self._crc = 0 if self._checksum and not self._prefix else None

    # -- feeding -----------------------------------------------------------------
    async def feed(self, data: Chunk) -> None:
        view = memoryview(data)
        while len(view):
            if not self._reserved:
                await self._budget.acquire(self.part_size)
                self._reserved = True
            if self._filled == 0 and self._will_fill():
                await self._start_forward()
            take = min(len(view), self.part_size - self._filled)
            piece = view[:take]
            self._chunks.append(piece)
            if self._md5 is not None:
                self._md5.update(piece)
            if self._crc is not None:
                self._crc = crc32(piece, self._crc)
            if self._forward is not None:
                self._forward[0].queue.put_nowait(piece)
            self._filled += take
            view = view[take:]
            if self._filled == self.part_size:
                await self.send()

    def _will_fill(self) -> bool:
        """This write fills the part, and it may be forwarded."""
        end = self.number * self.part_size
        if self._expected_end is None or end > self._expected_end:
            return False
        # once the store refused a trailer (``Integrity.forward_fallback``),
        # parts are buffered and sent once until the re-probe says otherwise
        return self.store.forwards(self._checksum)

    async def _start_forward(self) -> None:
        await self._slots.acquire()
        self._md5 = None  # hashed in a thread while the store takes the last bytes
        self._crc = None  # computed by the body as it goes out
        opened, self._preopened = self._preopened, None
        if opened is not None and self.number == self.first_number and not opened[1].done():
            self._forward = opened
            return
        if opened is not None:
            cancel_forward(opened[1])
        body = ForwardedBody(self.part_size, trailer=self._checksum)
        upload = self.store.upload_part_streaming(self.key, self.upload_id, self.number, body)
        self._forward = (body, asyncio.get_running_loop().create_task(upload))

    def _drop_preopened(self) -> None:
        if self._preopened is not None:
            cancel_forward(self._preopened[1])
            self._preopened = None

    async def _drop_forward(self) -> None:
        """Cancel the forwarded upload of a part the body did not fill."""
        self._drop_preopened()
        if self._forward is None:
            return
        _, task = self._forward
        self._forward = None
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        self._slots.release()

    async def send(self) -> None:
        """Store the current part (short only if it is the last)."""
        if self._forward is not None and self._filled < self.part_size:
            await self._drop_forward()
        if self._forward is None:
            await self._slots.acquire()
        prefix, chunks, forward = self._prefix, self._chunks, self._forward
        reserved = self._reserved
        md5 = self._md5.digest() if self._md5 is not None else None
        crc = crc32_b64(self._crc) if self._crc is not None else None
        number = self.number
        self.number += 1
        self._reset_part()
        if forward is not None:
            forward[0].queue.put_nowait(None)
        hold = _Hold(self._budget, self.part_size if reserved else 0)
        task = asyncio.get_running_loop().create_task(
            self._store_part(number, prefix, chunks, md5, crc, forward, hold)
        )
        task.add_done_callback(lambda t: self._note_failure(t, hold))
        self._tasks[number] = task

    async def _store_part(
        self,
        number: int,
        prefix: list[Piece],
        chunks: list[Chunk],
        md5: bytes | None,
        crc: str | None,
        forward: Forward | None,
        hold: _Hold,
    ) -> Part:
        try:
            if forward is not None:
                etag, md5, why, answer = await self._forwarded(forward[1], chunks)
                if etag is not None:
                    return etag, forward[0].checksum
                # failed or garbled: send it again from the buffer (with retries)
                if self._fallback is not None:
                    self._fallback(why, answer)
            head = await fetch_pieces(self.store, prefix, self.concurrency) if prefix else []
            data = [*head, *chunks]
            if self._checksum and crc is None:
                crc = crc32_of(data)
            etag = await self.store.upload_part(self.key, self.upload_id, number, data, md5, crc)
            return etag, crc or ""
        finally:
            chunks.clear()
            hold.release()  # before the slot, so a new buffer never overlaps it
            self._slots.release()

    async def _forwarded(
        self, upload: asyncio.Task[str], chunks: list[Chunk]
    ) -> tuple[str | None, bytes | None, str, str]:
        """The ETag of a forwarded part if it was stored intact, its MD5, and
        else why not and the store's answer."""
        digest = None
        if self._hashing and not self._checksum:  # hashlib releases the GIL
            loop = asyncio.get_running_loop()
            digest = asyncio.ensure_future(loop.run_in_executor(_HASHERS, md5_digest, list(chunks)))
        why = answer = ""
        try:
            try:
                etag: str | None = await upload
            except BackendError as exc:
                etag, answer = None, str(exc)
                trailer = self._checksum and not isinstance(exc, BackendUnavailable)
                why = "trailer_refused" if trailer else "forward_failed"
            md5 = await digest if digest is not None else None
        finally:
            if digest is not None:
                digest.cancel()
        if etag is not None and md5 is not None and etag.strip('"') != md5.hex():
            why, answer = "etag_mismatch", f"ETag {etag} is not the MD5 of the bytes sent"
            etag = None
        return etag, md5, why, answer

    def _note_failure(self, task: asyncio.Task[Part], hold: _Hold) -> None:
        hold.release()  # if the task never ran
        if not task.cancelled() and task.exception() is not None and self.failure is None:
            self.failure = task.exception()

    # -- what is left --------------------------------------------------------------
    @property
    def buffered(self) -> int:
        """Bytes of the part being filled (prefix pieces included)."""
        return self._filled

    @property
    def pending_prefix(self) -> list[Piece]:
        """Tail pieces not consumed by a part (all of them if no part was sent)."""
        return self._prefix

    async def take_leftover(self) -> tuple[list[Chunk], bytes | None]:
        """The bytes fed after the last sent part (excluding prefix pieces)
        and, when known, their MD5."""
        await self._drop_forward()
        chunks, self._chunks = self._chunks, []
        md5 = self._md5.digest() if self._md5 is not None and not self._prefix else None
        return chunks, md5

    async def close(self) -> None:
        """Stop forwarding an unsent part; give back its buffer's budget."""
        await self._drop_forward()
        if self._reserved:
            self._reserved = False
            self._budget.release(self.part_size)

    async def results(self) -> tuple[list[Part], BaseException | None]:
        """Wait for every sent part; the parts stored contiguously from the
        first one, and the failure that ended that run (if any)."""
        if self._tasks:
            await asyncio.wait(self._tasks.values())
        etags: list[Part] = []
        for number in range(self.first_number, self.number):
            task = self._tasks[number]
            exc = task.exception() if not task.cancelled() else asyncio.CancelledError()
            if exc is not None:
                return etags, exc
            etags.append(task.result())
        return etags, None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[PartPipe]:
        """Feed and wait inside: everything is cancelled if that fails, and
        the pipe is closed either way."""
        try:
            yield self
        except BaseException:
            await self.cancel()
            raise
        finally:
            await self.close()

    async def cancel(self) -> None:
        """Abandon everything (the caller is failing)."""
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(BaseException):
                await task
        await self.close()
