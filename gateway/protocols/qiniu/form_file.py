"""A form's file part as it arrives: held in memory (a file of up to
``qiniu.form_buffer`` after its token), written straight into an upload of
its key (a larger one whose key is known first, where the store writes
objects in parts: ``core.ObjectUpload``), or stored in a core stream (any
other: ``_store_file``). ``form.py`` then applies the put policy and makes
the object — or drops the bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from gateway.access import qetag
from gateway.access.tokens import UploadToken
from gateway.core import (
    BodyInterrupted,
    Crc32,
    HeldBytes,
    Kind,
    MemoryBudget,
    ObjectUpload,
)
from gateway.protocols.bodies import untraced

from .errors import BAD_REQUEST, TOO_LARGE
from .form_parts import FormPart
from .placing import Moment, content_type_of, planned_key
from .pre_create import Approved
from .runtime import Call
from .shared import Head, empty_body

#: the largest chunk a part hands out (one socket read: asyncio's at most)
_CHUNK = 256 * 1024
_READ_AHEAD = 4 * 1024 * 1024
FORM = "form"


@dataclass
class StoredFile:
    """The file part as received: its bytes in a core stream (``stream_id``)
    or held in memory (``held``), and what was computed as they passed."""

    stream_id: str | None
    bucket: str
    size: int
    etag: str
    #: computed as the bytes passed; None: of ``held``, computed if asked
    crc32: int | None
    head: bytes
    filename: str | None
    content_type: str | None
    #: the stream became the object: never delete it as an abandoned upload
    committed: bool = False
    held: HeldBytes | None = None
    #: written straight into an upload of its key (``_write_direct``)
    direct: ObjectUpload | None = None
    moment: Moment | None = None

    def crc(self) -> int:
        """The file's CRC32 (of held bytes: only a client that sends one
        needs it, and the field may come after the file)."""
        if self.crc32 is None:
            assert self.held is not None
            crc = Crc32()
            for chunk in self.held.chunks:
                crc.update(chunk)
            self.crc32 = crc.value
        return self.crc32


class FilePart:
    """The ``file`` part's bytes as an async iterator, stopping (and flagging)
    once more than ``limit`` bytes arrived.

    A reader task keeps up to ``_READ_AHEAD`` bytes (from the global memory
    budget) ahead of the backend, so that a backend pausing between pieces
    (Swift's ``100-continue``, an S3 part upload) does not push back on the
    client at once: the Node SDK's multipart stream can stop for good after
    its socket pushed back, never sending the fields that follow the file."""

    def __init__(
        self, request: web.Request, part: FormPart, limit: int | None, budget: MemoryBudget
    ) -> None:
        self.request = request
        self.part = part
        self.limit = limit
        self.budget = budget
        self.received = 0
        self.too_large = False

    async def _fill(self, queue: asyncio.Queue[bytes | BaseException | None]) -> None:
        try:
            while chunk := await self.part.read_chunk():
                self.received += len(chunk)
                if self.limit is not None and self.received > self.limit:
                    self.too_large = True
                    break
                await self.budget.acquire(len(chunk))
                try:
                    await queue.put(chunk)
                except BaseException:
                    self.budget.release(len(chunk))
                    raise
            await queue.put(None)
        except (aiohttp.ClientPayloadError, ConnectionError, aiohttp.ClientConnectionError) as exc:
            await queue.put(BodyInterrupted(str(untraced(exc))))
        except Exception as exc:
            await queue.put(exc)

    async def chunks(self) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(
            maxsize=_READ_AHEAD // _CHUNK
        )
        reader = asyncio.get_running_loop().create_task(self._fill(queue))
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                self.budget.release(len(item))
                yield item
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            while not queue.empty():
                item = queue.get_nowait()
                if isinstance(item, bytes):
                    self.budget.release(len(item))


async def receive_file(
    call: Call,
    part: FormPart,
    token: UploadToken | None,
    approved: Approved | None,
    fields: dict[str, str],
) -> StoredFile:
    """Hold the file in memory if the token came first and it is small
    enough; else write it on its key if that is known (``_write_direct``),
    else store it in a stream as it arrives (``_store_file``)."""
    if token is None or approved is None:
        return await _store_file(call, part, None)
    bucket = call.check_bucket(token.policy.bucket)
    limit = token.policy.fsize_limit or None
    held = call.service.hold(bucket)
    try:
        while chunk := await part.read_chunk():
            await held.add(chunk)
            if limit is not None and held.size > limit:
                raise TOO_LARGE.error()
            if held.size > call.config.qiniu.form_buffer:
                direct = _direct_upload(call, token, approved, fields)
                if direct is not None:
                    return await _write_direct(call, part, token, held, *direct, fields)
                return await _store_file(call, part, token, held)
    except BaseException:
        held.release()
        raise
    hasher, head = qetag.BlockHasher(), Head()
    for chunk in held.chunks:
        hasher.update(chunk)
        head.update(chunk)
    return StoredFile(
        stream_id=None,
        bucket=bucket,
        size=held.size,
        etag=qetag.v1(hasher.digests()),
        crc32=None,
        head=bytes(head.data),
        filename=part.filename,
        content_type=part.content_type,
        held=held,
    )


def _direct_upload(
    call: Call, token: UploadToken, approved: Approved, fields: dict[str, str]
) -> tuple[ObjectUpload, Moment] | None:
    """An upload of the file's object on its key, if the key is known now
    and allowed, and the store can make the object once the checks passed
    (only where the key is free, for a token that may not replace one)."""
    bucket = call.check_bucket(approved.bucket or token.policy.bucket)
    if_absent = not token.policy.may_overwrite
    # the request's length bounds the file's (a file of more parts than the
    # store takes is staged: its parts are sized to fit)
    at_most = call.request.content_length
    if not call.service.writes_objects_in_parts(bucket, if_absent, at_most):
        return None
    moment = Moment()
    key = planned_key(token, bucket, fields.get("key"), approved.key, moment)
    if key is None or call.service.key_problem(bucket, key) is not None:
        return None
    if approved.key is None and not token.policy.covers(key):
        return None  # refused once the file is in, as on the other paths
    upload = call.service.object_upload(
        protocol="qiniu", bucket=bucket, key=key, if_absent=if_absent, extra={"qiniu": FORM}
    )
    return upload, moment


async def _write_direct(
    call: Call,
    part: FormPart,
    token: UploadToken,
    held: HeldBytes,
    upload: ObjectUpload,
    moment: Moment,
    fields: dict[str, str],
) -> StoredFile:
    """The file (after ``held``, the bytes already read of it) into the
    upload of its object, which ``_finish`` completes or drops."""
    limit = token.policy.fsize_limit or None
    source = FilePart(call.request, part, limit, call.service.memory_budget(upload.bucket))
    source.received = held.size
    hasher, crc, head = qetag.BlockHasher(), Crc32(), Head()
    client_mime = part.content_type

    def content_type() -> str:
        fname = fields.get("fname") or part.filename
        return content_type_of(token, client_mime, fname, fields.get("key"), bytes(head.data))

    async def rest() -> AsyncIterator[bytes]:
        async for chunk in source.chunks():
            yield chunk
        if source.too_large:
            raise TOO_LARGE.error()

    try:
        await upload.write(held, rest(), [hasher, crc, head], content_type)
    except BaseException as exc:
        await upload.abort()
        if isinstance(exc, BodyInterrupted):
            raise BAD_REQUEST.error("the body was cut short") from exc
        raise
    return StoredFile(
        stream_id=None,
        bucket=upload.bucket,
        size=upload.size,
        etag=qetag.v1(hasher.digests()),
        crc32=crc.value,
        head=bytes(head.data),
        filename=part.filename,
        content_type=client_mime,
        direct=upload,
        moment=moment,
    )


async def _chain(held: HeldBytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The held bytes, then the rest, giving the held bytes' budget back
    once they are passed on."""
    try:
        async for chunk in held.body():
            yield chunk
        held.release()
        async for chunk in rest:
            yield chunk
    finally:
        held.release()


async def _store_file(
    call: Call, part: FormPart, token: UploadToken | None, held: HeldBytes | None = None
) -> StoredFile:
    """The file into a new stream as it arrives (after ``held``, the bytes
    already read of it)."""
    bucket = call.check_bucket(token.policy.bucket) if token else call.runtime.staging_bucket()
    limit = token.policy.fsize_limit if token and token.policy.fsize_limit else None
    record = await call.service.create(
        protocol="qiniu",
        bucket=bucket,
        key=None,
        length=None,
        kind=Kind.PART,
        extra={"qiniu": FORM},
    )
    hasher, crc, head = qetag.BlockHasher(), Crc32(), Head()
    source = FilePart(call.request, part, limit, call.service.memory_budget(bucket))
    chunks = source.chunks()
    if held is not None:
        source.received = held.size
        chunks = _chain(held, chunks)
    try:
        record = await call.service.write(
            record.id, 0, chunks, hashers=[hasher, crc, head], require_complete_body=True
        )
        if source.too_large:
            raise TOO_LARGE.error()
        record = await call.service.write(
            record.id, record.offset, empty_body(), declare_length=record.offset
        )
    except BaseException:
        with contextlib.suppress(Exception):
            await call.service.terminate(record.id)
        raise
    return StoredFile(
        stream_id=record.id,
        bucket=bucket,
        size=record.offset,
        etag=qetag.v1(hasher.digests()),
        crc32=crc.value,
        head=bytes(head.data),
        filename=part.filename,
        content_type=part.content_type,
    )
