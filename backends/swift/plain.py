"""A small object whose bytes all arrive in one write: one plain object PUT
on its key (``Content-Length``, ``ETag``), no segment, no manifest, no
listing. Swift's SLO path would store a segment, then a manifest whose PUT
reads the segment back, then list the stream's prefix: about twice the
store's work for a file that fits one request.

Taken only when the object may be made by the write (``StreamInfo.early_object``:
no pre-finish hook still to ask, not insert-only, no digest or checksum still
to check), the stream has its own key, nothing was written yet, its length
is at most ``plain_object_size`` and the request does not announce fewer
bytes. The body is held (from the memory budget, once its first byte is
here) until it has all arrived. A body cut short is written as segments
instead, as any write, so what arrived is kept. ``commit`` still lists the
stream's prefix for segments of a write cut by a gateway crash before its
state was saved, unless the stream was written whole by the call that
created it (``StreamInfo.one_write``: a Qiniu form file), which no earlier
write can have touched.

A plain object carries what the manifest would (its type, ``X-Delete-At``,
the SHA-256); ``commit`` to the same key moves nothing (one POST if the
metadata changed since the write).

Replacing: the PUT is first sent with ``If-None-Match: *``. At a new key that
is all; with ``StreamInfo.if_absent`` Swift's 412 is ``Exists`` and nothing is
stored. Else the object there is read (an SLO's pieces), the PUT sent again
without the condition, and the old SLO's segments and markers deleted, as
when a manifest replaces one.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass

from backends import bodies
from backends.base import JSON, MemoryBudget, ObjectInfo, ObjectMeta, StreamInfo, WriteResult
from backends.errors import Exists, InvalidState, NotFound
from backends.swift.client import SwiftClient, etag_of
from backends.swift.manifests import Manifests, Tree

#: the object metadata that keeps the SHA-256 the gateway computed
SHA256_HEADER = "X-Object-Meta-Sha256"
_STATE = "plain"

Writer = Callable[[StreamInfo, AsyncIterator[bytes]], Awaitable[WriteResult]]
Dropper = Callable[[Tree], Awaitable[None]]


def content_type_for(key: str, given: str | None) -> str:
    """The type an object at ``key`` is stored with: ``given``, else guessed."""
    return given or mimetypes.guess_type(key)[0] or "application/octet-stream"


def object_headers(content_type: str, delete_at: int | None, sha256: str | None) -> dict[str, str]:
    """What an object (plain or manifest) carries besides its bytes."""
    headers = {"Content-Type": content_type}
    if delete_at is not None:
        headers["X-Delete-At"] = str(delete_at)
    if sha256:
        headers[SHA256_HEADER] = sha256
    return headers


@dataclass(frozen=True)
class Plain:
    """A stream written as the plain object at ``key`` (its state)."""

    key: str
    size: int
    etag: str
    content_type: str
    delete_at: int | None = None
    sha256: str | None = None

    def info(self) -> ObjectInfo:
        return ObjectInfo(
            key=self.key, size=self.size, content_type=self.content_type, etag=self.etag
        )


def load_plain(state: JSON, offset: int) -> Plain | None:
    """The plain object a stream's state records, if it records one."""
    data = state.get(_STATE)
    if data is None:
        return None
    try:
        plain = Plain(**data)
    except TypeError as exc:
        raise InvalidState(f"unreadable swift stream state: {exc}") from exc
    if plain.size != offset:
        raise InvalidState(f"swift object holds {plain.size} bytes, the offset is {offset}")
    return plain


class PlainObjects:
    def __init__(
        self,
        client: SwiftClient,
        container: str,
        manifests: Manifests,
        budget: MemoryBudget,
        limit: int,
    ) -> None:
        self.client = client
        self.container = container
        self.manifests = manifests
        self.budget = budget
        #: the largest object written this way (``plain_object_size``)
        self.limit = limit

    def fits(self, stream: StreamInfo) -> bool:
        """Is ``stream`` one this module writes (see the module docstring)?"""
        return (
            stream.key is not None
            and stream.early_object
            and stream.offset == 0
            and not stream.state.get("segments")
            and stream.length is not None
            and 0 < stream.length <= self.limit
            # a body announced shorter is segments at once, streamed
            and (stream.incoming is None or stream.incoming >= stream.length)
        )

    async def write(
        self, stream: StreamInfo, body: AsyncIterator[bytes], segments: Writer, drop: Dropper
    ) -> WriteResult:
        """The whole body as one plain object; a shorter body goes to
        ``segments`` (the usual writer); ``drop`` deletes what a replaced
        SLO referenced."""
        length = stream.length
        assert length is not None and stream.key is not None
        came = await bodies.arrived(body)
        if came is None:  # nothing arrived: nothing to hold
            return WriteResult(offset=stream.offset, state=stream.state)
        await self.budget.acquire(length)
        try:
            chunks: list[bytes] = []
            received = 0
            async for chunk in came:
                received += len(chunk)
                if received > length:
                    raise InvalidState(f"a write past the stream's length {length}")
                chunks.append(chunk)
            if received < length:  # cut short: kept as any write's bytes are
                return await segments(stream, bodies.chain(list(chunks), None))
            data = b"".join(chunks)
            del chunks
            plain = await self._put(stream, stream.key, data, drop)
        finally:
            self.budget.release(length)

        async def rollback() -> None:  # the core refused the write: no object stays
            await self.client.call("DELETE", self.container, plain.key, ok=(404,))

        state: JSON = {"segments": [], _STATE: asdict(plain)}
        return WriteResult(offset=length, state=state, rollback=rollback)

    async def _put(self, stream: StreamInfo, key: str, data: bytes, drop: Dropper) -> Plain:
        sha256 = stream.sha256() if stream.sha256 is not None else None  # all bytes passed
        content_type = content_type_for(key, stream.content_type)
        headers = object_headers(content_type, stream.delete_at, sha256)
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        headers["ETag"] = md5  # Swift refuses other bytes (422)
        reply = await self.client.call(
            "PUT",
            self.container,
            key,
            data=data,
            headers={**headers, "If-None-Match": "*"},
            ok=(412,),
        )
        if reply.status == 412:
            if stream.if_absent:
                raise Exists(key)
            old = await self.manifests.tree(self.container, key)
            reply = await self.client.call("PUT", self.container, key, data=data, headers=headers)
            if old is not None and old.slo:
                await drop(old)
        etag = etag_of(reply.headers)
        if etag != md5:
            raise self.client.unavailable(f"{key} was stored with ETag {etag}")
        return Plain(key, len(data), etag, content_type, stream.delete_at, sha256)

    async def commit(self, plain: Plain, key: str, meta: ObjectMeta | None) -> ObjectInfo:
        """The object the write made is the object at ``key``; its metadata
        is brought to ``meta``'s (one POST) only where it differs."""
        if key != plain.key:
            raise InvalidState(f"the stream's object is {plain.key!r}, not {key!r}")
        content_type = content_type_for(key, meta.content_type if meta else None)
        delete_at = meta.delete_at if meta is not None else None
        sha256 = (meta.sha256 if meta is not None else None) or plain.sha256
        if (content_type, delete_at, sha256) == (plain.content_type, plain.delete_at, plain.sha256):
            return plain.info()
        headers = object_headers(content_type, delete_at, sha256)
        reply = await self.client.call("POST", self.container, key, headers=headers, ok=(404,))
        if reply.status == 404:
            raise NotFound(key)
        return ObjectInfo(key=key, size=plain.size, content_type=content_type, etag=plain.etag)
