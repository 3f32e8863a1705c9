"""FastDFS backend: streams are appender files, objects are normal files.

Layout (FastDFS picks every file id, ``group/M00/xx/yy/name.ext``; the
extension is taken from the key when it is 1–6 letters or digits):

* **stream** — one appender file, created empty by ``create_stream``
  (command 23) and grown by appends (24) of ``append_batch_size`` bytes; its
  id is ``StreamInfo.state["file_id"]``. A stream of known length up to
  ``append_batch_size`` gets no file at creation: its first write holds its
  bytes (from the memory budget) and uploads them — all of them as a normal
  file (11; ``state["sealed"]``, nothing left to seal: one storage request
  for a small form file or tus upload), fewer as an appender file with them.
  Every later write first asks the file's size (22): bytes past
  ``stream.offset`` were never acknowledged (a crash between an append and
  the state commit) and are truncated away (36) before appending, so a
  repeated write never duplicates bytes; a file shorter than
  ``stream.offset`` is ``InvalidState``.
* **object** — a normal file. ``commit`` renames the stream's appender file
  with "regenerate appender filename" (38, V6.02+): no bytes move, and the
  result can no longer be appended to. A server that answers 38 with EINVAL
  (older than 6.02) keeps the appender id as the object. ``assemble`` copies
  the streams through the gateway — ranges of ``copy_chunk_size`` downloaded
  (14) and piped straight into appends to a new appender file, a socket
  buffer at a time — then renames that file the same way.
* **copy** (instant upload) — no server-side copy exists: the file is copied
  storage to storage through the gateway like ``assemble``, into a new file.
* **key → file id** — in the gateway's shared KV, namespace ``kv_namespace``
  (default ``fastdfs``; give each FastDFS backend of one gateway its own),
  value ``{"file_id": …, "source": …, "content_type": …, "sha256": …}``
  (source = the appender id it was committed from, which makes a repeated
  ``commit`` a no-op; sha256 = the object's SHA-256 the gateway computed as
  its bytes passed: FastDFS's own metadata (command 13) is not used, it
  would be one more request to the storage per object for what this entry
  holds at no cost). ``stat``/``read``/``delete_object``/``object_url`` resolve keys
  through it. A replaced object's old file is deleted after the new mapping
  is written.

Stream operations go to the file's source storage server (tracker query
update, 103); object reads to any server that has it (query fetch, 102).
One crash window is left: if the gateway dies between the storage's answer to
38 and the KV write, the new file id is unknown and that object is lost (its
upload must be repeated). Permissions: network access to the trackers and
storage servers (the storage's ``allow_hosts`` must admit the gateway);
FastDFS has no credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from pydantic import Field, field_validator

from backends import bodies
from backends.base import (
    JSON,
    Backend,
    BackendConfig,
    BackendContext,
    Capability,
    MemoryBudget,
    ObjectInfo,
    ObjectMeta,
    StreamInfo,
    WriteResult,
)
from backends.errors import (
    BackendConfigError,
    BackendError,
    BackendUnavailable,
    InvalidState,
    NotFound,
)
from backends.fastdfs.client import Addr, FastDFSClient, StreamBody
from backends.fastdfs.protocol import GROUP_LEN, FastDFSRejected

MiB = 1 << 20
_EXT = re.compile(r"[A-Za-z0-9]{1,6}")
_GROUP = re.compile(rf"[A-Za-z0-9_]{{1,{GROUP_LEN}}}")


def parse_addr(text: str) -> Addr:
    """``host:port`` (``[v6]:port``) → (host, port); ValueError if malformed."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {text!r}")
    return host, int(port)


class FastDFSConfig(BackendConfig):
    type: str = "fastdfs"
    #: tracker servers, "host:port" (FastDFS default port 22122)
    trackers: list[str] = Field(min_length=1)
    #: store new files in this group (default: the tracker chooses)
    group: str | None = None
    connect_timeout: float = Field(default=5.0, gt=0)
    #: bound on every send/receive on a connection
    network_timeout: float = Field(default=30.0, gt=0)
    #: base URL of the storage HTTP servers (nginx + fastdfs module); object
    #: URLs are ``http_base_url/group/M00/…``. None: the gateway serves them.
    http_base_url: str | None = None
    #: idle connections kept per server
    pool_size: int = Field(default=8, ge=0)
    idle_timeout: float = Field(default=30.0, gt=0)
    #: bytes per append while a stream is written (memory: two per write)
    append_batch_size: int = Field(default=4 * MiB, ge=64 * 1024, le=256 * MiB)
    #: bytes per append when assembling streams (piped, not buffered)
    copy_chunk_size: int = Field(default=64 * MiB, ge=64 * 1024)
    #: KV namespace of the key → file id mapping; it outlives renames of the
    #: backend, so only change it with the data. Distinct per FastDFS backend.
    kv_namespace: str = Field(default="fastdfs", min_length=1)

    @field_validator("trackers")
    @classmethod
    def _check_trackers(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_addr(item)
        return value

    @field_validator("group")
    @classmethod
    def _check_group(cls, value: str | None) -> str | None:
        if value is not None and not _GROUP.fullmatch(value):
            raise ValueError(f"group must be 1-{GROUP_LEN} letters, digits or '_'")
        return value

    def public_urls(self) -> str | None:
        return "http_base_url" if self.http_base_url else None

    @field_validator("http_base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("http_base_url must start with http:// or https://")
        return value.rstrip("/")


def _ext(key: str | None) -> str:
    name = (key or "").rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    return ext if dot and stem and _EXT.fullmatch(ext) else ""


class FastDFSBackend(Backend):
    type_name: ClassVar[str] = "fastdfs"
    config_model: ClassVar[type[BackendConfig]] = FastDFSConfig
    #: OBJECT_URLS: ``object_url`` answers None unless ``http_base_url`` is set
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, name: str, config: BackendConfig, context: BackendContext) -> None:
        super().__init__(name, config, context)
        assert isinstance(config, FastDFSConfig)
        self.cfg = config
        self.client = FastDFSClient(
            [parse_addr(t) for t in config.trackers],
            connect_timeout=config.connect_timeout,
            network_timeout=config.network_timeout,
            pool_size=config.pool_size,
            idle_timeout=config.idle_timeout,
            telemetry=self.telemetry,
        )
        self.namespace = config.kv_namespace
        self._regenerate_supported = True

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        try:
            await self.ping()
        except BackendUnavailable as exc:
            trackers = ", ".join(self.cfg.trackers)
            raise BackendConfigError(
                f"backend {self.name!r}: no FastDFS tracker answered ({trackers}): {exc}"
            ) from exc
        group = self.cfg.group
        try:
            await self.client.query_store(group)
        except NotFound as exc:
            where = f"group {group!r}" if group else "any group"
            raise BackendConfigError(
                f"backend {self.name!r}: the FastDFS tracker has no active storage in {where}"
            ) from exc
        except BackendError as exc:
            raise BackendConfigError(
                f"backend {self.name!r}: FastDFS tracker cannot pick a storage server: {exc}"
            ) from exc

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        failures = []
        for addr in self.client.trackers:
            try:
                await self.client.active_test(addr)
                return
            except BackendError as exc:
                failures.append(str(exc))
        raise BackendUnavailable("; ".join(failures))

    # -- streams ---------------------------------------------------------------
    def _deferred(self, stream: StreamInfo) -> bool:
        """A stream whose file is made by its first write (module docstring)."""
        return (
            stream.length is not None
            and 0 < stream.length <= self.cfg.append_batch_size
            and "file_id" not in stream.state
        )

    async def create_stream(self, stream: StreamInfo) -> JSON:
        if self._deferred(stream):
            return {}
        file_id = await self.client.upload_appender(b"", ext=_ext(stream.key), group=self.cfg.group)
        return {"file_id": file_id}

    async def write(self, stream: StreamInfo, body: AsyncIterator[bytes]) -> WriteResult:
        if self._deferred(stream):
            return await self._first_write(stream, body)
        file_id = _file_id(stream)
        start = stream.offset
        storage = (await self.client.query_update(file_id)).addr
        await self._trim(file_id, storage, start)
        pipe = _AppendPipe(self.client, file_id, storage, self.context.budget, start)
        try:
            await self._pump(body, pipe)
        except BackendUnavailable as exc:
            if not pipe.failed:
                raise
            partial = self._result(stream, pipe.stored) if pipe.stored > start else None
            raise BackendUnavailable(
                f"FastDFS write stopped at offset {pipe.stored}: {exc}",
                partial=partial,
                retry_after=exc.retry_after,
            ) from exc
        return self._result(stream, pipe.stored)

    async def _first_write(self, stream: StreamInfo, body: AsyncIterator[bytes]) -> WriteResult:
        """The file of a deferred stream, made with the bytes of its first
        write: a normal file if they are all of them, else an appender."""
        length = stream.length
        assert length is not None
        came = await bodies.arrived(body)
        if came is None:  # nothing arrived: still no file
            return WriteResult(offset=stream.offset, state=stream.state)
        budget = self.context.budget
        await budget.acquire(length)
        try:
            data = bytearray()
            async for chunk in came:
                if len(data) + len(chunk) > length:
                    raise InvalidState(f"a write past the stream's length {length}")
                data += chunk
            whole = len(data) == length
            file_id = await self.client.upload(
                data, ext=_ext(stream.key), appender=not whole, group=self.cfg.group
            )
        finally:
            budget.release(length)

        async def rollback() -> None:  # the state without it has no file
            await self._delete_quietly(file_id)

        state: JSON = {"file_id": file_id, "sealed": True} if whole else {"file_id": file_id}
        return WriteResult(offset=len(data), state=state, rollback=rollback)

    async def _pump(self, body: AsyncIterator[bytes], pipe: _AppendPipe) -> None:
        """Cut ``body`` into batches and hand them to ``pipe``; on a short
        or broken body, still store what arrived (unless cancelled)."""
        size = self.cfg.append_batch_size
        budget = self.context.budget
        buf = bytearray()
        reserved = 0
        flush = True
        try:
            async for chunk in body:
                view = memoryview(chunk)
                while view:
                    if not reserved:
                        await budget.acquire(size)
                        reserved = size
                    take = min(len(view), size - len(buf))
                    buf += view[:take]  # grown, not made whole: most bodies are small
                    view = view[take:]
                    if len(buf) == size:
                        full, held = buf, reserved
                        buf, reserved = bytearray(), 0
                        await pipe.push(full, held)
                        # its budget goes back once it is stored: let it go
                        del full
        except asyncio.CancelledError:
            flush = False
            await pipe.abort()
            raise
        finally:
            try:
                if flush and buf and not pipe.failed:
                    full, held = buf, reserved
                    buf, reserved = bytearray(), 0
                    await pipe.push(full, held)
                if flush:
                    await pipe.wait()
            finally:
                if reserved:
                    budget.release(reserved)

    def _result(self, stream: StreamInfo, offset: int) -> WriteResult:
        file_id, start = _file_id(stream), stream.offset

        async def rollback() -> None:
            await self.client.truncate(file_id, start)

        return WriteResult(offset=offset, state=stream.state, rollback=rollback)

    async def _trim(self, file_id: str, storage: Addr, offset: int) -> None:
        """Make the appender file exactly ``offset`` bytes long."""
        size = (await self.client.file_info(file_id, storage=storage)).size
        if size > offset:  # never acknowledged: drop, don't duplicate
            await self.client.truncate(file_id, offset, storage=storage)
        elif size < offset:
            raise InvalidState(
                f"FastDFS file {file_id} holds {size} bytes, {offset} were acknowledged"
            )

    async def finish_stream(self, stream: StreamInfo) -> JSON:
        if stream.state.get("sealed"):  # a normal file of exactly its bytes
            return stream.state
        file_id = _file_id(stream)
        storage = (await self.client.query_update(file_id)).addr
        await self._trim(file_id, storage, stream.offset)
        return stream.state

    async def commit(
        self, stream: StreamInfo, key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        file_id = _file_id(stream)
        previous = await self._lookup(key)
        if previous is not None and previous.get("source") == file_id:
            return ObjectInfo(key=key, size=stream.offset)  # committed before
        final = file_id if stream.state.get("sealed") else await self._seal(file_id)
        await self._bind(key, final, file_id, previous, meta)
        return ObjectInfo(key=key, size=stream.offset)

    async def assemble(
        self, streams: Sequence[StreamInfo], key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        return await self._join([(_file_id(s), s.offset) for s in streams], key, meta)

    async def copy_object(
        self, source: str, key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        """FastDFS has no server-side copy: the file is copied storage to
        storage through the gateway as ``assemble`` does (bounded ranges, no
        client bytes), into a file of its own, so deleting either key never
        touches the other."""
        entry = await self._lookup(source)
        if entry is None:
            raise NotFound(source)
        size = (await self.client.file_info(entry["file_id"])).size
        return await self._join([(entry["file_id"], size)], key, meta)

    async def _join(
        self, sources: list[tuple[str, int]], key: str, meta: ObjectMeta | None
    ) -> ObjectInfo:
        """The object ``key`` made of ``sources`` (file id, bytes), in order."""
        target = await self.client.upload_appender(b"", ext=_ext(key), group=self.cfg.group)
        try:
            storage = (await self.client.query_update(target)).addr
            total = 0
            for file_id, length in sources:
                total += await self._copy(file_id, length, target, storage)
            final = await self._seal(target)
        except BaseException:
            await asyncio.shield(self._delete_quietly(target))
            raise
        await self._bind(key, final, None, await self._lookup(key), meta)
        return ObjectInfo(key=key, size=total)

    async def _copy(self, source: str, length: int, target: str, storage: Addr) -> int:
        """Append bytes ``[0, length)`` of ``source`` to ``target``."""
        if length == 0:
            return 0  # an empty file cannot even be downloaded
        origin = (await self.client.query_update(source)).addr
        position = 0
        while position < length:
            count = min(self.cfg.copy_chunk_size, length - position)
            async with self.client.open_download(source, position, count, storage=origin) as dl:
                if dl.size != count:
                    raise InvalidState(f"FastDFS file {source} is shorter than {length} bytes")
                await self.client.append(target, StreamBody(count, dl), storage=storage)
            position += count
        return length

    async def _seal(self, file_id: str) -> str:
        """Turn an appender file into a normal one; return the object's id."""
        if not self._regenerate_supported:
            return file_id
        storage = (await self.client.query_update(file_id)).addr
        try:
            return await self.client.regenerate_appender_filename(file_id, storage=storage)
        except FastDFSRejected:
            # EINVAL for a file that is still there: a server older than V6.02
            await self.client.file_info(file_id, storage=storage)
            self._regenerate_supported = False
            self.telemetry.fallback(
                "regenerate_appender_filename",
                "unsupported",
                "the storage server is older than V6.02: objects stay appender files",
            )
            return file_id

    async def discard_stream(self, stream: StreamInfo) -> None:
        file_id = stream.state.get("file_id")
        if isinstance(file_id, str):
            await self._delete_quietly(file_id)

    # -- objects ---------------------------------------------------------------
    async def stat(self, key: str) -> ObjectInfo | None:
        entry = await self._lookup(key)
        if entry is None:
            return None
        try:
            info = await self.client.file_info(entry["file_id"])
        except NotFound:
            return None
        content_type, sha256 = entry.get("content_type"), entry.get("sha256")
        return ObjectInfo(
            key=key,
            size=info.size,
            content_type=content_type if isinstance(content_type, str) else None,
            version=entry["file_id"],  # a replacing object is a new file
            sha256=sha256 if isinstance(sha256, str) else None,
        )

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        entry = await self._lookup(key)
        if entry is None:
            raise NotFound(key)
        async for chunk in self._download(entry["file_id"], key, start, end):
            yield chunk

    async def read_stream(
        self, stream: StreamInfo, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        stop = stream.offset if end is None else min(end, stream.offset)
        if stream.offset == 0:
            return  # a deferred stream may have no file yet
        async for chunk in self._download(_file_id(stream), stream.id, start, stop):
            yield chunk

    async def _download(
        self, file_id: str, name: str, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        try:
            storage = (await self.client.query_fetch(file_id)).addr
            size = (await self.client.file_info(file_id, storage=storage)).size
        except NotFound as exc:
            raise NotFound(name) from exc
        stop = size if end is None else min(end, size)
        if start >= stop:
            return  # includes an empty file, which FastDFS cannot serve
        async with self.client.open_download(file_id, start, stop - start, storage=storage) as dl:
            async for chunk in dl:
                yield chunk

    async def delete_object(self, key: str) -> None:
        entry = await self._lookup(key)
        if entry is None:
            return
        await self._delete_quietly(entry["file_id"])
        await self.context.kv.kv_delete(self.namespace, key)

    async def object_url(self, key: str, ttl: int, inline: bool = False) -> str | None:
        # FastDFS's HTTP server (nginx + fastdfs module) chooses its own headers
        if self.cfg.http_base_url is None:
            return None
        entry = await self._lookup(key)
        if entry is None:
            return None
        return f"{self.cfg.http_base_url}/{entry['file_id']}"

    # -- helpers ---------------------------------------------------------------
    async def _lookup(self, key: str) -> dict[str, Any] | None:
        raw = await self.context.kv.kv_get(self.namespace, key)
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("file_id"), str):
            raise InvalidState(f"bad FastDFS mapping for {key!r}: {raw!r}")
        return entry

    async def _bind(
        self,
        key: str,
        file_id: str,
        source: str | None,
        previous: dict[str, Any] | None,
        meta: ObjectMeta | None = None,
    ) -> None:
        """Point ``key`` at ``file_id``, then delete the file it replaced."""
        entry: dict[str, Any] = {"file_id": file_id, "source": source}
        if meta is not None and meta.content_type:
            entry["content_type"] = meta.content_type
        if meta is not None and meta.sha256:
            entry["sha256"] = meta.sha256
        value = json.dumps(entry)
        await self.context.kv.kv_set(self.namespace, key, value)
        if previous is not None and previous["file_id"] != file_id:
            await self._delete_quietly(previous["file_id"])

    async def _delete_quietly(self, file_id: str) -> None:
        with contextlib.suppress(NotFound):
            await self.client.delete(file_id)


def _file_id(stream: StreamInfo) -> str:
    file_id = stream.state.get("file_id")
    if not isinstance(file_id, str):
        raise InvalidState(f"stream {stream.id} has no FastDFS appender file")
    return file_id


class _AppendPipe:
    """Appends batches in order with one in flight while the next one fills;
    ``stored`` is the end of what the storage server acknowledged."""

    def __init__(
        self, client: FastDFSClient, file_id: str, storage: Addr, budget: MemoryBudget, offset: int
    ) -> None:
        self._client = client
        self._file_id = file_id
        self._storage = storage
        self._budget = budget
        self._task: asyncio.Task[None] | None = None
        self.stored = offset
        self.failed = False

    async def push(self, data: bytearray, reserved: int) -> None:
        try:
            await self.wait()
        except BaseException:
            self._budget.release(reserved)
            raise
        self._task = asyncio.create_task(self._append(data))
        # a callback, not a finally: a task cancelled before it starts runs no code
        self._task.add_done_callback(lambda _: self._budget.release(reserved))

    async def _append(self, data: bytearray) -> None:
        try:
            await self._client.append(self._file_id, data, storage=self._storage)
        except BaseException:
            self.failed = True
            raise
        self.stored += len(data)

    async def wait(self) -> None:
        task = self._task
        if task is None:
            return
        try:
            await task
        finally:
            if task.done():  # a cancelled wait leaves it for abort()
                self._task = None

    async def abort(self) -> None:
        """Cancel the append in flight and wait until it has let go."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
