"""The contract between the gateway core and an object store.

A backend stores two kinds of things (ARCHITECTURE.md §2, §6):

* **streams** — bytes that arrive in order at increasing offsets over many
  requests (a tus upload, a Qiniu block or v2 part). The backend keeps whatever
  private bookkeeping it needs (an S3 UploadId, a FastDFS appender file id, a
  list of Swift segments) in ``StreamInfo.state``, a JSON-able dict that the core
  persists in the state store and hands back on every call. The backend never
  keeps it anywhere else, so any gateway instance can continue any stream.
* **objects** — finished, readable bytes under a key, made from one stream
  (``commit``) or from several (``assemble``).

Rules every implementation follows:

* Write new, let the core commit, then delete old: ``write`` never destroys a
  piece the *current* ``StreamInfo.state`` refers to. What it superseded is
  deleted in ``WriteResult.after_commit``, after the core saved the new state;
  what it wrote is discarded by ``WriteResult.rollback`` if the core refuses
  the write (a checksum mismatch). Names of pieces derive from offsets, so a
  repeated write after a crash overwrites instead of duplicating.
* ``WriteResult.offset`` is only ever an offset the store durably holds.
* Errors leave the backend as the exceptions of ``backends.errors``; no SDK
  exception crosses this boundary.
* Nothing here knows of HTTP, tus or Qiniu.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from backends.telemetry import NO_TELEMETRY, Telemetry

JSON = dict[str, Any]


class Capability(enum.Enum):
    """What differs between backends, declared once per backend class and read
    by the core. Everything else in this contract every backend does (deferred
    lengths, rollback, assembly, termination, reads with ranges, reading an
    unfinished stream back); the conformance suite checks it on each."""

    #: the store deletes an object at ``ObjectMeta.delete_at`` itself (Qiniu
    #: deleteAfterDays, Swift X-Delete-At); without it the gateway's sweeper does
    OBJECT_EXPIRY = "object-expiry"
    #: an object can be written as numbered parts of one upload made on its
    #: key in the store (S3 multipart): ``open_object``, ``write_object_part``,
    #: ``complete_object``, ``abort_object``. The parts are stored once and
    #: cannot be read back before ``complete_object`` makes the object
    OBJECT_PARTS = "object-parts"


@dataclass(frozen=True)
class Limits:
    """Sizes the core and protocols must respect for this store."""

    #: every piece of a multi-piece object but the last must be at least this
    min_part_size: int = 0
    #: the most pieces one object may have (S3: 10,000; Swift s3api: 1,000)
    max_parts: int = 0  # 0 = unlimited
    #: the largest object the store accepts
    max_object_size: int = 0  # 0 = unlimited
    #: an object in parts (``Capability.OBJECT_PARTS``) may be made from some
    #: of the parts written (Ceph RGW 16: only from all of them)
    partial_complete: bool = True
    #: the longest stream, written whole in one ``write`` on its key, that the
    #: store makes only if the key holds no object (``StreamInfo.if_absent``;
    #: S3's PutObject with ``If-None-Match: *`` where the store honours it);
    #: 0: none
    create_if_absent: int = 0
    #: ``complete_object`` can make the object only if its key holds none
    #: (``if_absent``: S3's CompleteMultipartUpload with ``If-None-Match: *``
    #: where the store honours it)
    complete_if_absent: bool = False
    #: ``write_object_part`` checks a part against the MD5 it is given, so
    #: the caller need not hash it (S3 where a part's ETag is its MD5)
    checks_part_md5: bool = False


@dataclass
class StreamInfo:
    """A stream as the core knows it; ``state`` is the backend's own."""

    id: str
    #: the key the stream is meant to end up under, when known (a plain tus
    #: upload); a backend may write straight towards it so that ``commit``
    #: to the same key moves no bytes
    key: str | None
    length: int | None
    offset: int
    state: JSON = field(default_factory=dict)
    #: during ``write``: the size the body announces (a request's
    #: Content-Length), if known — a hint only; the body may end early
    incoming: int | None = None
    #: the content type of the object at ``key``, when known at creation (a
    #: tus upload's declared filetype): a backend that creates the object on
    #: ``key`` in ``create_stream`` (S3 multipart) must set it then, as
    #: ``commit`` to that key moves no bytes; the others get it again in
    #: ``commit``'s ``ObjectMeta``
    content_type: str | None = None
    #: the unix time the object at ``key`` is to be deleted at, when known at
    #: creation (``ObjectMeta.delete_at``): for a store that makes the object
    #: in a write (Swift's plain PUT of a small object, ``X-Delete-At``)
    delete_at: int | None = None
    #: whether a write may make the object at ``key`` before ``finish_stream``
    #: (S3's one PutObject of a small stream). False when the core must still
    #: approve the object when the stream finishes (a pre-finish hook, a key
    #: that must then be free): the backend writes such bytes elsewhere and
    #: ``commit`` moves them; what only ``finish_stream`` makes visible (a
    #: multipart upload's completion) may still be written on ``key``
    early_object: bool = True
    #: during ``write``: the SHA-256 (lowercase hex) of all the stream's
    #: bytes, once they have all passed the gateway (None before that, or
    #: where the gateway does not hash them) — for a store that makes the
    #: object in that write and keeps the digest with it (S3's one PutObject
    #: of an early object, ``x-amz-meta-sha256``)
    sha256: Callable[[], str | None] | None = None
    #: the object at ``key`` is made only if the key holds none (asked only
    #: for a stream of at most ``Limits.create_if_absent`` bytes written
    #: whole in one write): else ``write`` raises ``errors.Exists`` and
    #: stores nothing; a backend that cannot honour it refuses the write
    if_absent: bool = False
    #: every byte came in one write, made by the call that created the
    #: stream (its id known to nobody before): no earlier write can have
    #: left pieces behind for ``commit`` to look for
    one_write: bool = False
    #: the MD5 its client sent for the whole stream, given to the one write
    #: that brings all of it where ``checks_write_md5`` says the store checks
    #: it: ``write`` then raises ``errors.DigestMismatch`` (keeping nothing)
    #: if the stored bytes are not those, and the caller need not hash them
    md5: bytes | None = None


@dataclass
class WriteResult:
    """The outcome of ``Backend.write``: the new durable offset and state."""

    offset: int
    state: JSON
    #: deletes pieces the new state no longer refers to; called after commit
    after_commit: Callable[[], Awaitable[None]] | None = None
    #: discards what this write added; called if the core does not commit
    rollback: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None = None
    etag: str | None = None
    #: opaque, changes whenever the object at ``key`` is replaced (``stat``
    #: only): the gateway's own object expiry checks it before deleting
    version: str | None = None
    #: the SHA-256 (lowercase hex) the store keeps with the object, where it
    #: keeps one (``stat`` only; local xattr, Swift object metadata, S3
    #: ``x-amz-meta-sha256``, FastDFS the key's mapping)
    sha256: str | None = None


@dataclass(frozen=True)
class ObjectMeta:
    """What an object carries besides its bytes (``commit`` / ``assemble``)."""

    #: stored where the store keeps a content type; ``stat`` reads it back
    content_type: str | None = None
    #: unix time to delete the object at; only backends with
    #: ``Capability.OBJECT_EXPIRY`` act on it (the gateway expires the rest)
    delete_at: int | None = None
    #: the object's SHA-256 (lowercase hex), computed by the gateway as its
    #: bytes passed: kept with the object where the store can without moving
    #: bytes (local: an xattr; Swift: ``X-Object-Meta-Sha256``; S3:
    #: ``x-amz-meta-sha256`` on objects it makes by a copy; FastDFS: the
    #: key's mapping in the gateway's KV)
    sha256: str | None = None


class KeyValue(Protocol):
    """Namespaced shared storage a backend may use for mappings it cannot
    keep in the store itself (FastDFS chooses its own file ids)."""

    async def kv_get(self, namespace: str, key: str) -> str | None: ...

    async def kv_set(self, namespace: str, key: str, value: str) -> None: ...

    async def kv_delete(self, namespace: str, key: str) -> None: ...


class MemoryBudget(Protocol):
    """The global budget for part buffers."""

    async def acquire(self, size: int) -> None: ...

    def release(self, size: int) -> None: ...


@dataclass
class BackendContext:
    """What the gateway lends every backend: shared KV, the memory budget and
    the telemetry sink."""

    kv: KeyValue
    budget: MemoryBudget
    #: where store requests, errors and fallbacks are reported (``backends.telemetry``)
    telemetry: Telemetry = NO_TELEMETRY


class BackendConfig(BaseModel):
    """Base of every backend's configuration model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str

    def public_urls(self) -> str | None:
        """How the object URLs this store hands out are readable by anyone
        (no signature, no expiry), or None: a private bucket may not use it."""
        return None


class Backend(abc.ABC):
    """An object store. Subclasses set ``type_name``, ``config_model``,
    ``capabilities`` and implement every abstract method; there are no silent
    no-op defaults."""

    type_name: ClassVar[str]
    config_model: ClassVar[type[BackendConfig]]
    capabilities: ClassVar[frozenset[Capability]]

    def __init__(self, name: str, config: BackendConfig, context: BackendContext) -> None:
        self.name = name
        self.config = config
        self.context = context
        #: report store requests, errors and fallbacks here (labelled with ``name``)
        self.telemetry = context.telemetry.bound(name)

    @property
    def limits(self) -> Limits:
        return Limits()

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        """Connect and verify (bucket exists, credentials work); raise
        ``BackendConfigError`` with a clear message otherwise."""

    async def close(self) -> None:
        """Release connections and thread pools."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise ``BackendUnavailable`` unless the store answers now."""

    # -- streams -----------------------------------------------------------
    @abc.abstractmethod
    async def create_stream(self, stream: StreamInfo) -> JSON:
        """Prepare storage for a new, empty stream; return its private state."""

    @abc.abstractmethod
    async def write(self, stream: StreamInfo, body: AsyncIterator[bytes]) -> WriteResult:
        """Append ``body`` at ``stream.offset``.

        If the body ends early (a disconnect) the result holds what is stored.
        If the store fails part-way, raise ``BackendUnavailable`` whose
        ``partial`` is the ``WriteResult`` of what is durably stored, if any.
        """

    @abc.abstractmethod
    async def finish_stream(self, stream: StreamInfo) -> JSON:
        """Seal a stream whose bytes are all written (``offset == length``):
        flush tails, make it durable. Return the new private state. It may
        then be committed or assembled."""

    @abc.abstractmethod
    async def commit(
        self, stream: StreamInfo, key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        """Turn one finished stream into the object ``key`` (replacing any
        object there, and its ``meta``). The stream's storage is consumed."""

    @abc.abstractmethod
    async def assemble(
        self, streams: Sequence[StreamInfo], key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        """Make the object ``key`` from finished streams, in order. The
        streams stay until ``discard_stream`` is called on them."""

    @abc.abstractmethod
    async def discard_stream(self, stream: StreamInfo) -> None:
        """Delete everything a stream holds (terminate, expiry, after
        assembly). Idempotent: a missing piece is not an error."""

    def checks_write_md5(self, stream: StreamInfo) -> bool:
        """Whether a write of all of ``stream`` (``incoming`` its length,
        from its first byte) is checked by the store against ``stream.md5``
        (S3: a short temporary stream's one PutObject, where ETags are MD5s)."""
        return False

    async def discard_streams(self, streams: Sequence[StreamInfo]) -> None:
        """``discard_stream`` of each (a session's parts once its object is
        made); a store may do it in fewer requests."""
        for stream in streams:
            await self.discard_stream(stream)

    # -- objects -----------------------------------------------------------
    @abc.abstractmethod
    async def stat(self, key: str) -> ObjectInfo | None:
        """Describe the object at ``key``, or None."""

    @abc.abstractmethod
    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Yield bytes ``[start, end)`` of the object (``end`` None = to EOF).
        Raise ``NotFound`` if it does not exist."""

    @abc.abstractmethod
    async def delete_object(self, key: str) -> None:
        """Delete the object; a missing object is not an error."""

    @abc.abstractmethod
    async def copy_object(
        self, source: str, key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        """Make the object ``key`` (replacing any there) hold the bytes of the
        object ``source``, with ``meta``, inside the store where it can (the
        bytes do not pass the gateway). The two are independent from then on:
        deleting or replacing either never changes the other. ``NotFound`` if
        ``source`` does not exist."""

    @abc.abstractmethod
    def read_stream(
        self, stream: StreamInfo, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Yield bytes ``[start, end)`` of a stream (``end`` None = its offset):
        another instance recomputes a Qiniu block's SHA-1 after a restart."""

    # -- objects written as numbered parts (``Capability.OBJECT_PARTS``) ------
    async def open_object(self, key: str, meta: ObjectMeta | None = None) -> JSON:
        """Start the object ``key`` (with ``meta``'s content type) as an upload
        of numbered parts; return the upload's state. Nothing is visible."""
        raise NotImplementedError(f"{self.type_name} cannot write an object in parts")

    async def write_object_part(
        self,
        upload: JSON,
        number: int,
        body: AsyncIterator[bytes],
        length: int,
        md5: bytes | None = None,
    ) -> JSON:
        """Store part ``number`` (1..``limits.max_parts``) of ``upload``: all
        ``length`` bytes of ``body`` or ``InvalidState``. Return the part's
        state (a ``StreamInfo.state`` that ``discard_stream`` takes as
        holding nothing: the part goes with its upload). A part written
        again replaces the earlier one. With ``md5`` where
        ``limits.checks_part_md5``: ``DigestMismatch`` unless the stored
        bytes have that MD5 (the part then holds nothing usable)."""
        raise NotImplementedError(f"{self.type_name} cannot write an object in parts")

    async def complete_object(
        self,
        upload: JSON,
        parts: Sequence[tuple[int, JSON]],
        last: tuple[int, StreamInfo] | None = None,
        meta: ObjectMeta | None = None,
        if_absent: bool = False,
    ) -> ObjectInfo:
        """Make the object of ``upload`` from ``parts`` (number, state),
        ascending, then ``last``: a finished stream stored as the final part
        (its storage stays until ``discard_stream``). ``meta``'s content type
        replaces the one the upload was opened with if they differ. With
        ``if_absent`` (only where ``Limits.complete_if_absent``): only if the
        key holds no object, else ``errors.Exists`` and the upload stays as
        it was (``abort_object`` drops it)."""
        raise NotImplementedError(f"{self.type_name} cannot write an object in parts")

    async def abort_object(self, upload: JSON) -> None:
        """Drop ``upload`` and its parts (idempotent)."""
        raise NotImplementedError(f"{self.type_name} cannot write an object in parts")

    async def object_url(self, key: str, ttl: int, inline: bool = False) -> str | None:
        """A URL the store serves ``key`` at, or None to use the gateway's.
        Unless ``inline`` (its type is on the gateway's inline allow-list), the
        URL asks the store to serve it as an attachment where the store can:
        a browser then saves it, never renders it from the store's origin."""
        return None
