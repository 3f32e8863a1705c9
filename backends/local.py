"""Local-disk backend: the embedded default.

Layout under ``root``::

    streams/<stream id>         bytes of an unfinished stream, written at their offset
                                (readable back: ``read_stream``)
    objects/<encoded key>       finished objects
    objects/.tmp-<random>       an assembly being built (renamed into place when done)
    objects/<encoded key>%m     the object's content type, on filesystems without
                                extended attributes (``local_meta``)

Keys are mapped segment by segment (split on ``/``): each segment is
percent-encoded, ``""``, ``"."`` and ``".."`` get encodings of their own,
directories carry a ``%d`` suffix so ``a`` and ``a/b`` can both be objects,
and over-long segments are replaced by their SHA-256. No key can name a path
outside ``objects/``.

A finished stream becomes an object by ``rename``; several by
``os.copy_file_range`` into a temporary file that is then renamed.
``copy_object`` (instant upload) makes a hard link when the new object's
content type is the source's: objects are only ever replaced by ``rename``
and never rewritten in place (nor their extended attributes changed), so a
later overwrite or deletion of either key never changes the other. With
another content type (an extended attribute of the inode, which a link
would share) it copies like an assembly of one: a reflink where the
filesystem shares extents (XFS, Btrfs), an in-kernel copy elsewhere. Files are
fsynced (data and directory) before a finished object is acknowledged.
Blocking file calls run in the default thread pool.

A body is written in batches with ``pwritev`` (the received chunks, not a
joined copy); batches shrink from 1 MiB to 128 KiB as concurrent writes grow
(``_batching``), so the buffered bytes stay bounded and few thread hand-offs
are paid per MiB. With ``fsync`` on, each batch's writeback is started as
soon as it is written (``sync_file_range(SYNC_FILE_RANGE_WRITE)``, not
awaited), so the disk works while the rest of the body arrives and the fsync
that seals a stream has little left to wait for. The only write in progress
writes its batches from the event loop itself (a page-cache copy, cheaper
than the thread hand-off; figures in ``bench/RESULTS.md``). The
last batch of a body (known by its announced size) is written by the thread
call that ends the write, and when that write completes the stream the same
call seals the file (truncate, fsync), so ``finish_stream`` has nothing left
to do: two thread calls fewer for the PATCH that completes an upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import hashlib
import os
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import ClassVar, cast
from urllib.parse import quote

from backends import local_meta
from backends.base import (
    JSON,
    Backend,
    BackendConfig,
    BackendContext,
    Capability,
    ObjectInfo,
    ObjectMeta,
    StreamInfo,
    WriteResult,
)
from backends.errors import BackendConfigError, BackendUnavailable, NotFound

_BATCH_MAX = 1 << 20
_BATCH_MIN = 128 * 1024
_BUFFERED = 12 << 20
_IOV_MAX = os.sysconf("SC_IOV_MAX")
_SEALED_MAX = 4096
_READ_CHUNK = 1 << 20
_MAX_SEGMENT = 200


class LocalConfig(BackendConfig):
    type: str = "local"
    root: str = "./data"
    #: fsync finished objects before acknowledging them
    fsync: bool = True


def encode_key(key: str) -> Path:
    """The relative path of ``key`` under ``objects/``; never escapes it."""
    if not key:
        raise ValueError("empty object key")
    parts = key.split("/")
    out: list[str] = []
    for index, segment in enumerate(parts):
        if segment in ("", ".", ".."):
            name = {"": "%", ".": "%2E", "..": "%2E%2E"}[segment]
        else:
            name = quote(segment, safe="!$&'()+,;=@-_.~ ")
        if len(name.encode()) > _MAX_SEGMENT:
            name = hashlib.sha256(segment.encode()).hexdigest() + "%h"
        if index < len(parts) - 1:
            name += "%d"
        out.append(name)
    return Path(*out)


class LocalBackend(Backend):
    type_name: ClassVar[str] = "local"
    config_model: ClassVar[type[BackendConfig]] = LocalConfig
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, name: str, config: BackendConfig, context: BackendContext) -> None:
        super().__init__(name, config, context)
        assert isinstance(config, LocalConfig)
        self.root = Path(config.root).resolve()
        self.fsync = config.fsync
        self.streams_dir = self.root / "streams"
        self.objects_dir = self.root / "objects"
        self._writers = 0  # writes in progress
        #: stream id → the length a write sealed it at (``finish_stream`` skips the seal)
        self._sealed: dict[str, int] = {}

    def _batching(self) -> tuple[int, bool]:
        """(batch size, overlap) for the writes in progress. The batches of
        all writes together hold about ``_BUFFERED`` bytes (plus one received
        chunk each): 1 MiB, one written while the next arrives, for a few
        writes; smaller and written one at a time as writes grow."""
        n = max(1, self._writers)
        size = min(_BATCH_MAX, max(_BATCH_MIN, _BUFFERED // n))
        return size, 2 * n * size <= _BUFFERED

    async def start(self) -> None:
        try:
            self.streams_dir.mkdir(parents=True, exist_ok=True)
            self.objects_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendConfigError(f"local backend root {self.root}: {exc}") from exc
        if not os.access(self.root, os.W_OK):
            raise BackendConfigError(f"local backend root {self.root} is not writable")

    async def ping(self) -> None:
        if not self.objects_dir.is_dir():
            raise BackendUnavailable(f"{self.objects_dir} is missing")

    # -- paths ---------------------------------------------------------------
    def _stream_path(self, stream: StreamInfo) -> Path:
        return self.streams_dir / stream.id

    def _object_path(self, key: str) -> Path:
        try:
            return self.objects_dir / encode_key(key)
        except ValueError as exc:
            raise NotFound(str(exc)) from exc

    # -- streams -------------------------------------------------------------
    async def create_stream(self, stream: StreamInfo) -> JSON:
        path = self._stream_path(stream)
        with self.telemetry.timed("create"):
            await asyncio.to_thread(_create_empty, path, stream.content_type)
        return {}

    async def write(self, stream: StreamInfo, body: AsyncIterator[bytes]) -> WriteResult:
        path = self._stream_path(stream)
        start = stream.offset
        # opened by the first batch's thread call, closed by the last one: a
        # small body costs a single hand-off to the thread pool
        file = _StreamFile(path, writeback=self.fsync)
        self._writers += 1
        try:
            written, sealed = await self._fill(stream, file, body)
        except FileNotFoundError as exc:
            raise NotFound(f"stream {stream.id} has no data file") from exc
        except OSError as exc:
            raise BackendUnavailable(f"local write failed: {exc}") from exc
        finally:
            self._writers -= 1
            file.close()  # only if a failure left it open
        if sealed:
            self._sealed[stream.id] = start + written
            while len(self._sealed) > _SEALED_MAX:
                del self._sealed[next(iter(self._sealed))]

        async def rollback() -> None:
            self._sealed.pop(stream.id, None)
            await asyncio.to_thread(os.truncate, path, start)

        return WriteResult(offset=start + written, state=stream.state, rollback=rollback)

    async def _fill(
        self, stream: StreamInfo, file: _StreamFile, body: AsyncIterator[bytes]
    ) -> tuple[int, bool]:
        """Write ``body`` through the page cache: batches of the received
        chunks as they are (``pwritev``, no copy). Returns (bytes written,
        sealed)."""
        start = stream.offset
        loop = asyncio.get_running_loop()
        written = 0
        pending: asyncio.Future[int] | None = None
        batch: list[bytes] = []
        batched = received = 0
        limit, overlap = self._batching()
        try:
            async for chunk in body:
                batch.append(chunk)
                batched += len(chunk)
                received += len(chunk)
                # the body's last batch goes with ``finish``: one call less
                if batched >= limit and not _ends(stream, received):
                    if pending is not None:
                        written += await pending
                        pending = None
                    if self._writers == 1:  # the only write: no thread hand-off
                        written += file.write_chunks(batch, start + written)
                    else:
                        future = loop.run_in_executor(
                            None, file.write_chunks, batch, start + written
                        )
                        if overlap:  # the next batch arrives while this one is written
                            pending = future
                        else:
                            written += await future
                    batch, batched = [], 0
                    limit, overlap = self._batching()
        finally:
            # store everything received, even when the body was cut short
            if pending is not None:
                written += await pending
            end = start + written + batched
            seal = _completes(stream, end)
            last = partial(file.write_chunks, batch, start + written) if batch else None
            with self.telemetry.timed("append"):  # the last batch, sealed (fsync) if complete
                written += await loop.run_in_executor(
                    None, file.finish, last, end, seal, self.fsync
                )
        return written, seal

    async def finish_stream(self, stream: StreamInfo) -> JSON:
        if self._sealed.pop(stream.id, None) == stream.offset:
            return stream.state  # the write that completed it sealed it
        path = self._stream_path(stream)
        with self.telemetry.timed("fsync"):
            await asyncio.to_thread(_seal, path, stream.offset, self.fsync)
        return stream.state

    async def commit(
        self, stream: StreamInfo, key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        source = self._stream_path(stream)
        target = self._object_path(key)

        def move() -> None:
            local_meta.save(source, target, meta, self.fsync)
            _move_into_place(source, target, self.fsync)

        with self.telemetry.timed("commit"):
            await asyncio.to_thread(move)
        return ObjectInfo(key=key, size=stream.offset)

    async def assemble(
        self, streams: Sequence[StreamInfo], key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        target = self._object_path(key)
        sources = [self._stream_path(s) for s in streams]

        def concatenate() -> int:
            return _concatenate(sources, target, self.objects_dir, self.fsync, meta)

        with self.telemetry.timed("assemble"):
            size = await asyncio.to_thread(concatenate)
        return ObjectInfo(key=key, size=size)

    async def copy_object(
        self, source: str, key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        origin = self._object_path(source)
        target = self._object_path(key)

        def copy() -> int:
            try:
                current = local_meta.info(origin, source)
                if current is None:
                    raise NotFound(source)
                if current.content_type == (meta.content_type if meta else None):
                    try:
                        return _link(origin, target, self.objects_dir, self.fsync, meta)
                    except (FileNotFoundError, NotADirectoryError):
                        raise
                    except OSError as exc:  # EMLINK (a link limit), EPERM: copy instead
                        self.telemetry.fallback("copy", "link", f": copied instead ({exc})")
                return _concatenate([origin], target, self.objects_dir, self.fsync, meta)
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise NotFound(source) from exc

        with self.telemetry.timed("copy"):
            size = await asyncio.to_thread(copy)
        return ObjectInfo(key=key, size=size)

    async def discard_stream(self, stream: StreamInfo) -> None:
        self._sealed.pop(stream.id, None)
        with self.telemetry.timed("discard"):
            await asyncio.to_thread(_unlink_quietly, self._stream_path(stream))

    # -- objects -------------------------------------------------------------
    async def stat(self, key: str) -> ObjectInfo | None:
        try:
            path = self._object_path(key)
        except NotFound:
            return None
        with self.telemetry.timed("stat"):
            return await asyncio.to_thread(local_meta.info, path, key)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in _read_file(self._object_path(key), key, start, end):
            yield chunk

    async def read_stream(
        self, stream: StreamInfo, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        stop = stream.offset if end is None else min(end, stream.offset)
        async for chunk in _read_file(self._stream_path(stream), stream.id, start, stop):
            yield chunk

    async def delete_object(self, key: str) -> None:
        try:
            path = self._object_path(key)
        except NotFound:
            return

        def delete() -> None:
            _unlink_quietly(path)
            local_meta.remove(path)

        with self.telemetry.timed("delete"):
            await asyncio.to_thread(delete)


async def _read_file(path: Path, name: str, start: int, end: int | None) -> AsyncIterator[bytes]:
    try:
        fd = await asyncio.to_thread(os.open, path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise NotFound(name) from exc
    try:
        position = start
        while end is None or position < end:
            size = _READ_CHUNK if end is None else min(_READ_CHUNK, end - position)
            data = await asyncio.to_thread(os.pread, fd, size, position)
            if not data:
                break
            position += len(data)
            yield data
    finally:
        os.close(fd)


def _create_empty(path: Path, content_type: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb"):
        pass
    if content_type:  # sealed with the bytes (``local_meta``)
        local_meta.mark(path, content_type)


def _completes(stream: StreamInfo, end: int) -> bool:
    """Does a write ending at ``end`` complete the stream? Its last thread
    call then seals the file (``_StreamFile.finish``)."""
    return stream.length is not None and end == stream.length and end > stream.offset


def _ends(stream: StreamInfo, received: int) -> bool:
    """Has the body of a write to ``stream`` arrived whole (its announced size)?"""
    return stream.incoming is not None and received >= stream.incoming


def _pwritev_all(fd: int, views: list[memoryview], offset: int) -> None:
    """Write ``views`` back to back at ``offset`` (short writes resumed)."""
    while views:
        n = os.pwritev(fd, views[:_IOV_MAX], offset)
        if n <= 0:
            raise OSError(errno.EIO, "pwritev wrote nothing")
        offset += n
        while views and n >= len(views[0]):
            n -= len(views.pop(0))
        if n:
            views[0] = views[0][n:]


class _StreamFile:
    """A stream's file during one write. ``write_chunks`` (in the thread
    pool, or in the event loop when it is the only write in progress) and
    ``finish`` (in the thread pool) run one at a time; the lock only matters
    when a cancelled write closes the file while a thread still uses it."""

    def __init__(self, path: Path, writeback: bool = False) -> None:
        self.path = path
        self.fd = -1
        #: start each batch's writeback as soon as it is written
        self.writeback = writeback and _sync_file_range is not None
        self._lock = threading.RLock()

    def _open(self) -> int:
        if self.fd < 0:
            self.fd = os.open(self.path, os.O_WRONLY)
        return self.fd

    def write_chunks(self, chunks: list[bytes], offset: int) -> int:
        """Write ``chunks`` back to back at ``offset`` through the page cache
        (opening the file first), and with ``writeback`` start (not await)
        their way to the disk, so that the fsync sealing the stream finds
        little left to do; closed on failure. Returns the bytes."""
        with self._lock:
            try:
                views = [memoryview(c) for c in chunks]
                total = sum(len(v) for v in views)
                fd = self._open()
                _pwritev_all(fd, views, offset)
                if self.writeback and _sync_file_range is not None:
                    _sync_file_range(fd, offset, total, _SYNC_FILE_RANGE_WRITE)
                return total
            except BaseException:
                self.close()
                raise

    def finish(self, last: Callable[[], int] | None, end: int, seal: bool, fsync: bool) -> int:
        """Write the last batch (``last``), seal the file at ``end`` if the
        stream is complete (truncate, fsync), close. Returns the bytes
        written here."""
        with self._lock:
            if last is None and self.fd < 0:
                os.stat(self.path)  # an empty body: the stream must still exist
                return 0
            try:
                n = last() if last is not None else 0
                if seal:
                    _seal_fd(self._open(), end, fsync)
                return n
            finally:
                self.close()

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                fd, self.fd = self.fd, -1
                os.close(fd)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's sync_file_range(2) (Linux; not in the os module), or None."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], fn)


_SYNC_FILE_RANGE_WRITE = 2
_sync_file_range = _load_sync_file_range()


def _seal(path: Path, length: int, fsync: bool) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        _seal_fd(fd, length, fsync)
    finally:
        os.close(fd)


def _seal_fd(fd: int, length: int, fsync: bool) -> None:
    if os.fstat(fd).st_size != length:
        os.ftruncate(fd, length)  # drop bytes of an uncommitted write past the end
    if fsync:
        os.fsync(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _move_into_place(source: Path, target: Path, fsync: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    if fsync:
        _fsync_dir(target.parent)


def _copy_into(dst_fd: int, src: Path) -> int:
    copied = 0
    with open(src, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        while copied < size:
            try:
                n = os.copy_file_range(f.fileno(), dst_fd, size - copied)
            except OSError:
                n = 0
            if n == 0:  # not supported here: plain copy of the rest
                f.seek(copied)
                while block := f.read(_READ_CHUNK):
                    os.write(dst_fd, block)
                    copied += len(block)
                break
            copied += n
    return copied


def _concatenate(
    sources: list[Path], target: Path, tmp_dir: Path, fsync: bool, meta: ObjectMeta | None
) -> int:
    tmp = tmp_dir / f".tmp-{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        total = sum(_copy_into(fd, src) for src in sources)
        local_meta.save(tmp, target, meta, fsync)  # its fsync is the data's too
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    _move_into_place(tmp, target, fsync)
    return total


def _link(source: Path, target: Path, tmp_dir: Path, fsync: bool, meta: ObjectMeta | None) -> int:
    """``target`` as a second name of ``source``'s file (durable already)."""
    tmp = tmp_dir / f".tmp-{secrets.token_hex(8)}"
    os.link(source, tmp)
    try:
        local_meta.save(tmp, target, meta, fsync)
        size = os.stat(tmp).st_size
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _move_into_place(tmp, target, fsync)
    return size


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
