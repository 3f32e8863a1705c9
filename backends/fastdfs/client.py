"""A small asyncio FastDFS client (tracker + storage protocol, V6.x).

Commands: tracker query store (101/104), fetch (102), update (103); storage
upload (11), upload appender (23), append (24), modify (34), truncate (36),
regenerate appender filename (38), delete (12), download with offset/length
(14), query file info (22); active test (111) on both.

Connections are pooled per server address and reused between requests; one
that failed, timed out, answered an error or was left mid-response is closed,
never pooled (the storage server rolls back an append cut short). Idempotent
requests are retried once when a *pooled* connection turns out to be dead.
Every socket operation is bounded by ``network_timeout``. Error statuses
become the exceptions of :mod:`backends.fastdfs.protocol` (all subclasses of
:mod:`backends.errors`); network failures become ``BackendUnavailable``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import asynccontextmanager

from backends.errors import BackendUnavailable, InvalidState
from backends.fastdfs.protocol import (
    EXT_LEN,
    GROUP_LEN,
    HEADER_SIZE,
    RESP,
    Cmd,
    FastDFSError,
    FileId,
    FileInfo,
    StorageAddr,
    pack_fixed,
    pack_header,
    parse_file_info,
    parse_storage_addr,
    status_error,
    u64,
    unpack_fixed,
    unpack_header,
)
from backends.telemetry import NO_TELEMETRY, BackendTelemetry

Addr = tuple[str, int]

_NETWORK_ERRORS = (OSError, EOFError, TimeoutError)
_SMALL = 1024  # largest answer expected to any non-download command
_READ_CHUNK = 256 * 1024
_STREAM_LIMIT = 1 << 20
#: a payload goes to the socket this much at a time, each slice drained
#: before the next: what the kernel does not take at once is copied into the
#: transport's buffer, so a whole payload written at once would be held twice
_WRITE_SLICE = 256 * 1024


class StreamBody:
    """A request payload of known ``size`` produced chunk by chunk."""

    def __init__(self, size: int, chunks: AsyncIterable[bytes]) -> None:
        self.size = size
        self.chunks = chunks


Payload = bytes | bytearray | memoryview | StreamBody


def _payload_size(payload: Payload | None) -> int:
    if payload is None:
        return 0
    if isinstance(payload, StreamBody):
        return payload.size
    return len(payload)


def _unavailable(addr: Addr, what: str, exc: BaseException) -> BackendUnavailable:
    detail = str(exc) or type(exc).__name__
    return BackendUnavailable(f"FastDFS {addr[0]}:{addr[1]} failed during {what}: {detail}")


class _Conn:
    """One TCP connection to a tracker or storage server."""

    def __init__(
        self, addr: Addr, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self.addr = addr
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.idle_since = time.monotonic()

    @property
    def alive(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writer.write(data)

    async def drain(self) -> None:
        async with asyncio.timeout(self.timeout):
            await self.writer.drain()

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` a slice at a time, draining after each."""
        view = memoryview(data)
        for start in range(0, len(view), _WRITE_SLICE):
            self.writer.write(view[start : start + _WRITE_SLICE])
            await self.drain()

    async def recv_exact(self, size: int) -> bytes:
        async with asyncio.timeout(self.timeout):
            return await self.reader.readexactly(size)

    async def recv_some(self, size: int) -> bytes:
        async with asyncio.timeout(self.timeout):
            data = await self.reader.read(size)
        if not data:
            raise EOFError("connection closed mid-response")
        return data

    async def recv_header(self) -> tuple[int, int]:
        length, cmd, status = unpack_header(await self.recv_exact(HEADER_SIZE))
        if cmd != RESP:
            raise EOFError(f"protocol error: answer has command {cmd}, expected {RESP}")
        return length, status

    def abort(self) -> None:
        self.writer.transport.abort()


class _Pool:
    """Idle connections per address, at most ``max_idle`` each."""

    def __init__(self, connect_timeout: float, timeout: float, max_idle: int, idle_timeout: float):
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self._idle: dict[Addr, list[_Conn]] = {}

    async def acquire(self, addr: Addr) -> tuple[_Conn, bool]:
        """A connection to ``addr`` and whether it was reused from the pool."""
        idle = self._idle.get(addr, [])
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.alive and now - conn.idle_since < self.idle_timeout:
                return conn, True
            conn.abort()
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(*addr, limit=_STREAM_LIMIT)
        except _NETWORK_ERRORS as exc:
            raise _unavailable(addr, "connect", exc) from exc
        return _Conn(addr, reader, writer, self.timeout), False

    def release(self, conn: _Conn) -> None:
        idle = self._idle.setdefault(conn.addr, [])
        if not conn.alive or len(idle) >= self.max_idle:
            conn.abort()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def discard_idle(self, addr: Addr) -> None:
        """Drop the idle connections to ``addr`` (one was found dead)."""
        for conn in self._idle.pop(addr, []):
            conn.abort()

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.writer.close()
        self._idle.clear()


class Download:
    """The answer to a download: ``size`` bytes, read by iterating."""

    def __init__(self, conn: _Conn, size: int, what: str) -> None:
        self._conn = conn
        self._what = what
        self.size = size
        self.remaining = size

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while self.remaining:
            try:
                data = await self._conn.recv_some(min(_READ_CHUNK, self.remaining))
            except _NETWORK_ERRORS as exc:
                raise _unavailable(self._conn.addr, self._what, exc) from exc
            self.remaining -= len(data)
            yield data

    async def read_all(self) -> bytes:
        return b"".join([chunk async for chunk in self])


class FastDFSClient:
    def __init__(
        self,
        trackers: Sequence[Addr],
        *,
        connect_timeout: float = 5.0,
        network_timeout: float = 30.0,
        pool_size: int = 8,
        idle_timeout: float = 30.0,
        telemetry: BackendTelemetry | None = None,
    ) -> None:
        self.telemetry = telemetry or NO_TELEMETRY.bound("fastdfs")
        if not trackers:
            raise ValueError("at least one tracker is required")
        self.trackers = list(trackers)
        self._pool = _Pool(connect_timeout, network_timeout, pool_size, idle_timeout)
        self._next_tracker = 0

    async def close(self) -> None:
        self._pool.close()

    # -- plumbing -------------------------------------------------------------
    async def _request(
        self,
        addr: Addr,
        cmd: Cmd,
        body: bytes,
        what: str,
        *,
        payload: Payload | None = None,
        retry: bool = False,
    ) -> bytes:
        """Send one request and return the answer's body (at most 1 KiB);
        timed and reported to the backend's telemetry."""
        with self.telemetry.timed(cmd.name.lower()):
            return await self._send(addr, cmd, body, what, payload=payload, retry=retry)

    async def _send(
        self,
        addr: Addr,
        cmd: Cmd,
        body: bytes,
        what: str,
        *,
        payload: Payload | None,
        retry: bool,
    ) -> bytes:
        for attempt in range(2):
            conn, reused = await self._pool.acquire(addr)
            try:
                answer = await self._exchange(conn, cmd, body, payload, what)
            except _NETWORK_ERRORS as exc:
                conn.abort()
                if retry and reused and attempt == 0:
                    self._pool.discard_idle(addr)
                    self.telemetry.warn(
                        "stale-connection", "%s: %r; retrying on a new connection", what, exc
                    )
                    continue
                raise _unavailable(addr, what, exc) from exc
            except BaseException:
                conn.abort()
                raise
            self._pool.release(conn)
            return answer
        raise AssertionError("unreachable")

    async def _exchange(
        self, conn: _Conn, cmd: Cmd, body: bytes, payload: Payload | None, what: str
    ) -> bytes:
        try:
            conn.write(pack_header(len(body) + _payload_size(payload), cmd) + body)
            if isinstance(payload, StreamBody):
                await self._send_stream(conn, payload)
            elif payload:
                await conn.send(payload)
            await conn.drain()
        except _NETWORK_ERRORS as exc:
            # a server may refuse a request early and close: report its errno
            await self._early_answer(conn, what, exc)
            raise
        length, status = await conn.recv_header()
        if status:
            raise status_error(status, what)
        if length > _SMALL:
            raise EOFError(f"protocol error: {length}-byte answer to {what}")
        return await conn.recv_exact(length) if length else b""

    @staticmethod
    async def _early_answer(conn: _Conn, what: str, cause: BaseException) -> None:
        try:
            async with asyncio.timeout(1.0):
                _, status = await conn.recv_header()
        except _NETWORK_ERRORS:
            return
        if status:
            raise status_error(status, what) from cause

    @staticmethod
    async def _send_stream(conn: _Conn, payload: StreamBody) -> None:
        sent = 0
        async for chunk in payload.chunks:
            sent += len(chunk)
            if sent > payload.size:
                raise InvalidState(f"payload longer than the declared {payload.size} bytes")
            await conn.send(chunk)
        if sent != payload.size:
            raise InvalidState(f"payload ended after {sent} of {payload.size} bytes")

    async def _tracker(self, cmd: Cmd, body: bytes, what: str) -> bytes:
        """Ask the trackers in turn until one answers; stick with it."""
        failures: list[str] = []
        count = len(self.trackers)
        for step in range(count):
            index = (self._next_tracker + step) % count
            try:
                answer = await self._request(self.trackers[index], cmd, body, what, retry=True)
            except FastDFSError:
                raise
            except BackendUnavailable as exc:
                failures.append(str(exc))
                continue
            self._next_tracker = index
            return answer
        raise BackendUnavailable("no FastDFS tracker answered: " + "; ".join(failures))

    # -- tracker --------------------------------------------------------------
    async def active_test(self, addr: Addr) -> None:
        await self._request(addr, Cmd.ACTIVE_TEST, b"", "active test", retry=True)

    async def query_store(self, group: str | None = None) -> StorageAddr:
        """Where to upload a new file (in ``group`` if given)."""
        if group:
            cmd, body = Cmd.QUERY_STORE_WITH_GROUP_ONE, pack_fixed(group, GROUP_LEN)
        else:
            cmd, body = Cmd.QUERY_STORE_WITHOUT_GROUP_ONE, b""
        answer = await self._tracker(cmd, body, f"query store {group or ''}".rstrip())
        return self._storage_addr(answer, with_path_index=True)

    async def query_fetch(self, file_id: str) -> StorageAddr:
        """A storage server that can serve ``file_id``."""
        return await self._query_file(Cmd.QUERY_FETCH_ONE, file_id)

    async def query_update(self, file_id: str) -> StorageAddr:
        """The storage server that can change ``file_id`` (its source)."""
        return await self._query_file(Cmd.QUERY_UPDATE, file_id)

    async def _query_file(self, cmd: Cmd, file_id: str) -> StorageAddr:
        body = _group_and_name(file_id)
        answer = await self._tracker(cmd, body, f"{cmd.name.lower()} {file_id}")
        return self._storage_addr(answer, with_path_index=False)

    @staticmethod
    def _storage_addr(answer: bytes, *, with_path_index: bool) -> StorageAddr:
        try:
            return parse_storage_addr(answer, with_path_index=with_path_index)
        except ValueError as exc:
            raise BackendUnavailable(f"FastDFS tracker: {exc}") from exc

    # -- storage --------------------------------------------------------------
    async def upload(
        self,
        data: Payload,
        *,
        ext: str = "",
        appender: bool = False,
        group: str | None = None,
        target: StorageAddr | None = None,
    ) -> str:
        """Store a new file; return its file id."""
        target = target or await self.query_store(group)
        cmd = Cmd.UPLOAD_APPENDER_FILE if appender else Cmd.UPLOAD_FILE
        size = _payload_size(data)
        body = bytes([target.store_path_index]) + u64(size) + pack_fixed(ext, EXT_LEN)
        answer = await self._request(target.addr, cmd, body, cmd.name.lower(), payload=data)
        if len(answer) <= GROUP_LEN:
            raise BackendUnavailable(f"FastDFS upload: short answer of {len(answer)} bytes")
        return f"{unpack_fixed(answer[:GROUP_LEN])}/{answer[GROUP_LEN:].decode()}"

    async def upload_appender(
        self, data: Payload = b"", *, ext: str = "", group: str | None = None
    ) -> str:
        return await self.upload(data, ext=ext, appender=True, group=group)

    async def append(self, file_id: str, data: Payload, *, storage: Addr | None = None) -> None:
        name = FileId.parse(file_id).remote.encode()
        body = u64(len(name)) + u64(_payload_size(data)) + name
        addr = storage or (await self.query_update(file_id)).addr
        await self._request(addr, Cmd.APPEND_FILE, body, f"append {file_id}", payload=data)

    async def modify(
        self, file_id: str, offset: int, data: Payload, *, storage: Addr | None = None
    ) -> None:
        name = FileId.parse(file_id).remote.encode()
        body = u64(len(name)) + u64(offset) + u64(_payload_size(data)) + name
        addr = storage or (await self.query_update(file_id)).addr
        await self._request(addr, Cmd.MODIFY_FILE, body, f"modify {file_id}", payload=data)

    async def truncate(self, file_id: str, size: int = 0, *, storage: Addr | None = None) -> None:
        name = FileId.parse(file_id).remote.encode()
        body = u64(len(name)) + u64(size) + name
        addr = storage or (await self.query_update(file_id)).addr
        await self._request(addr, Cmd.TRUNCATE_FILE, body, f"truncate {file_id}", retry=True)

    async def regenerate_appender_filename(
        self, file_id: str, *, storage: Addr | None = None
    ) -> str:
        """Turn an appender file into a normal file; return its new id."""
        body = FileId.parse(file_id).remote.encode()
        addr = storage or (await self.query_update(file_id)).addr
        cmd = Cmd.REGENERATE_APPENDER_FILENAME
        answer = await self._request(addr, cmd, body, f"regenerate {file_id}")
        if len(answer) <= GROUP_LEN:
            raise BackendUnavailable(f"FastDFS regenerate: short answer of {len(answer)} bytes")
        return f"{unpack_fixed(answer[:GROUP_LEN])}/{answer[GROUP_LEN:].decode()}"

    async def delete(self, file_id: str, *, storage: Addr | None = None) -> None:
        body = _group_and_name(file_id)
        addr = storage or (await self.query_update(file_id)).addr
        await self._request(addr, Cmd.DELETE_FILE, body, f"delete {file_id}", retry=True)

    async def file_info(self, file_id: str, *, storage: Addr | None = None) -> FileInfo:
        body = _group_and_name(file_id)
        addr = storage or (await self.query_fetch(file_id)).addr
        what = f"query file info {file_id}"
        answer = await self._request(addr, Cmd.QUERY_FILE_INFO, body, what, retry=True)
        try:
            return parse_file_info(answer)
        except ValueError as exc:
            raise BackendUnavailable(f"FastDFS {what}: {exc}") from exc

    async def download(
        self, file_id: str, offset: int = 0, length: int = 0, *, storage: Addr | None = None
    ) -> bytes:
        """Bytes ``[offset, offset + length)`` (``length`` 0 = to the end) in memory."""
        async with self.open_download(file_id, offset, length, storage=storage) as answer:
            return await answer.read_all()

    @asynccontextmanager
    async def open_download(
        self, file_id: str, offset: int = 0, length: int = 0, *, storage: Addr | None = None
    ) -> AsyncIterator[Download]:
        """Stream a range; the server clamps ``length`` at EOF (see ``size``).
        An offset at or past EOF (so any offset of an empty file) is EINVAL."""
        body = u64(offset) + u64(length) + _group_and_name(file_id)
        addr = storage or (await self.query_fetch(file_id)).addr
        what = f"download {file_id}"
        for attempt in range(2):
            conn, reused = await self._pool.acquire(addr)
            try:
                conn.write(pack_header(len(body), Cmd.DOWNLOAD_FILE) + body)
                await conn.drain()
                size, status = await conn.recv_header()
            except _NETWORK_ERRORS as exc:
                conn.abort()
                if reused and attempt == 0:
                    self._pool.discard_idle(addr)
                    continue
                raise _unavailable(addr, what, exc) from exc
            except BaseException:
                conn.abort()
                raise
            if status:
                conn.abort()
                raise status_error(status, what)
            break
        answer = Download(conn, size, what)
        complete = False
        try:
            yield answer
            complete = answer.remaining == 0
        finally:
            if complete:
                self._pool.release(conn)
            else:
                conn.abort()


def _group_and_name(file_id: str) -> bytes:
    fid = FileId.parse(file_id)
    return pack_fixed(fid.group, GROUP_LEN) + fid.remote.encode()
