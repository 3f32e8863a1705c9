"""A FastDFS test server: one tracker and one storage server on loopback.

It speaks the FastDFS 6.x wire protocol for exactly the commands the gateway
uses and behaves as the real server does:

* tracker: query store without/with group (101/104), query fetch (102) and
  update (103), active test (111), quit (82);
* storage: upload (11), upload appender (23), append (24), modify (34),
  truncate (36), regenerate appender filename (38), delete (12), download
  with offset/length (14), query file info (22), active test, quit;
* errno 22 for append/modify/truncate on a normal file, modify past EOF, a
  download starting at or past EOF (so an empty file cannot be downloaded),
  a wrong group or malformed request, and any unknown command (as servers
  older than 6.02 answer command 38); errno 2 for a missing file; truncate
  to a larger size extends with zeros; download lengths are clamped at EOF;
  regenerate gives a new normal file id and the old one answers 2;
* an append or upload cut short by a dropped connection is rolled back.

Files live under ``<dir>/data/XX/YY/<name>[.ext]`` (store path ``M00``). As
in FastDFS the name encodes what the server must know later (creation time,
CRC32 and the appender flag), so a restart on the same directory keeps every
file usable.

In-process use (a thread runs the event loop)::

    with FastDFSServer() as server:
        server.tracker_addr          # "127.0.0.1:PORT"
        server.stop_storage(); server.start_storage()   # fault tests

Stand-alone (for benchmarks)::

    python -m testservers.fastdfs_server --port 22122 --dir /tmp/fdfs
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import errno
import os
import re
import secrets
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType

HEADER = struct.Struct(">QBB")
U64 = struct.Struct(">Q")
RESP = 100
GROUP_LEN = 16
TRACKER_IP_LEN = 15  # IP_ADDRESS_SIZE - 1, as tracker answers carry it
INFO_IP_LEN = 16  # IP_ADDRESS_SIZE in a query-file-info answer
EXT_LEN = 6
CHUNK = 256 * 1024

_NAME = struct.Struct(">IIHQ")  # created, crc32, flags, random → 24 base64 chars
_APPENDER = 1
_REMOTE = re.compile(r"M00/([0-9A-F]{2})/([0-9A-F]{2})/([A-Za-z0-9_-]{24})(\.[A-Za-z0-9]{1,6})?")
_EXT = re.compile(r"[A-Za-z0-9]{0,6}")


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(errno.errorcode.get(status, str(status)))
        self.status = status


class _Body:
    """The unread rest of one request's body."""

    def __init__(self, reader: asyncio.StreamReader, length: int) -> None:
        self.reader = reader
        self.remaining = length

    async def take(self, size: int) -> bytes:
        if size < 0 or size > self.remaining:
            raise _Refused(errno.EINVAL)
        data = await self.reader.readexactly(size)
        self.remaining -= size
        return data

    async def u64(self) -> int:
        value: int = U64.unpack(await self.take(8))[0]
        return value

    async def chunk(self) -> bytes:
        data = await self.reader.read(min(CHUNK, self.remaining))
        if not data:
            raise asyncio.IncompleteReadError(b"", self.remaining)
        self.remaining -= len(data)
        return data

    async def skip(self) -> None:
        while self.remaining:
            await self.chunk()


def _reply(writer: asyncio.StreamWriter, body: bytes = b"", status: int = 0) -> None:
    writer.write(HEADER.pack(len(body), RESP, status) + body)


def _fixed(text: str, width: int) -> bytes:
    return text.encode().ljust(width, b"\0")[:width]


def _unfixed(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode(errors="replace")


def _file_crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return crc


Handler = Callable[[_Body, asyncio.StreamWriter], Awaitable[None]]


class FastDFSServer:
    """Tracker + storage on ``host``; ``start()``/``stop()`` or use as a context manager."""

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        tracker_port: int = 0,
        storage_port: int = 0,
        group: str = "group1",
        regenerate: bool = True,
    ) -> None:
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="fdfs-"))
        self.host = host
        self.tracker_port = tracker_port
        self.storage_port = storage_port
        self.group = group
        #: answer command 38 (False: behave like a server older than 6.02)
        self.regenerate = regenerate
        #: connections accepted so far, per role
        self.accepted = {"tracker": 0, "storage": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: dict[str, asyncio.Server] = {}
        self._conns: dict[str, set[asyncio.StreamWriter]] = {"tracker": set(), "storage": set()}
        #: changes to one file happen one at a time (a cut-short append is
        #: rolled back before the next change starts)
        self._file_locks: dict[Path, asyncio.Lock] = {}
        self._storage_cmds: dict[int, Handler] = {
            11: self._upload_file,
            23: self._upload_appender,
            24: self._append,
            34: self._modify,
            36: self._truncate,
            38: self._regenerate,
            12: self._delete,
            14: self._download,
            22: self._file_info,
            111: self._active_test,
        }
        self._tracker_cmds: dict[int, Handler] = {
            101: self._query_store,
            104: self._query_store_with_group,
            102: self._query_file,
            103: self._query_file,
            111: self._active_test,
        }

    # -- public API ----------------------------------------------------------
    @property
    def tracker_addr(self) -> str:
        return f"{self.host}:{self.tracker_port}"

    @property
    def storage_addr(self) -> str:
        return f"{self.host}:{self.storage_port}"

    def start(self) -> FastDFSServer:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fastdfs-server", daemon=True)
        self._thread.start()
        try:
            self._call(self._listen("tracker"))
            self._call(self._listen("storage"))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        for role in list(self._servers):
            self._call(self._close(role))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def stop_storage(self) -> None:
        """Crash the storage server: stop listening and drop every connection."""
        self._call(self._close("storage"))

    def start_storage(self) -> None:
        """Bring the storage server back on the same port and directory."""
        self._call(self._listen("storage"))

    def path_of(self, file_id: str) -> Path:
        """Where the file ``group/M00/...`` is kept on disk."""
        group, _, remote = file_id.partition("/")
        path = self._path(remote)
        if group != self.group or path is None:
            raise ValueError(f"not a file id of this server: {file_id!r}")
        return path

    def files(self, *, appender: bool | None = None) -> list[str]:
        """File ids of the stored files (only appender or normal ones if given)."""
        found = []
        for path in sorted((self.root / "data").glob("*/*/*")):
            if not path.is_file():
                continue
            is_appender = bool(self._name_fields(path)[2] & _APPENDER)
            if appender is None or appender == is_appender:
                remote = "/".join(("M00", path.parent.parent.name, path.parent.name, path.name))
                found.append(f"{self.group}/{remote}")
        return found

    def __enter__(self) -> FastDFSServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- plumbing ------------------------------------------------------------
    def _call(self, coro: Awaitable[None]) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    async def _listen(self, role: str) -> None:
        port = self.tracker_port if role == "tracker" else self.storage_port
        cmds = self._tracker_cmds if role == "tracker" else self._storage_cmds

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(role, cmds, reader, writer)

        server = await asyncio.start_server(serve, self.host, port, reuse_address=True)
        bound = server.sockets[0].getsockname()[1]
        if role == "tracker":
            self.tracker_port = bound
        else:
            self.storage_port = bound
        self._servers[role] = server

    async def _close(self, role: str) -> None:
        server = self._servers.pop(role, None)
        if server is not None:
            server.close()
        for writer in list(self._conns[role]):
            writer.transport.abort()
        if server is not None:
            await server.wait_closed()

    async def _serve(
        self,
        role: str,
        cmds: dict[int, Handler],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.accepted[role] += 1
        self._conns[role].add(writer)
        try:
            while True:
                length, cmd, _ = HEADER.unpack(await reader.readexactly(HEADER.size))
                if cmd == 82:  # quit
                    break
                body = _Body(reader, length)
                try:
                    handler = cmds.get(cmd)
                    if handler is None:
                        raise _Refused(errno.EINVAL)
                    await handler(body, writer)
                except _Refused as refused:
                    await body.skip()
                    _reply(writer, status=refused.status)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._conns[role].discard(writer)
            writer.transport.abort()

    @contextlib.asynccontextmanager
    async def _lock(self, path: Path) -> AsyncIterator[None]:
        async with self._file_locks.setdefault(path, asyncio.Lock()):
            yield

    # -- names and paths -----------------------------------------------------
    def _new_name(self, ext: str, *, appender: bool, crc: int = 0) -> tuple[str, Path]:
        flags = _APPENDER if appender else 0
        raw = _NAME.pack(int(time.time()), crc, flags, secrets.randbits(64))
        name = base64.urlsafe_b64encode(raw).decode() + (f".{ext}" if ext else "")
        high, low = (f"{secrets.randbelow(256):02X}" for _ in range(2))
        remote = f"M00/{high}/{low}/{name}"
        path = self.root / "data" / high / low / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return remote, path

    def _path(self, remote: str) -> Path | None:
        match = _REMOTE.fullmatch(remote)
        if match is None:
            return None
        high, low, name, ext = match.groups()
        return self.root / "data" / high / low / (name + (ext or ""))

    @staticmethod
    def _name_fields(path: Path) -> tuple[int, int, int]:
        created, crc, flags, _ = _NAME.unpack(base64.urlsafe_b64decode(path.name[:24]))
        return created, crc, flags

    def _existing(self, remote: str, *, appender: bool = False) -> Path:
        """The file named ``remote``: EINVAL if malformed (or, when ``appender``,
        not an appender file), ENOENT if missing."""
        path = self._path(remote)
        if path is None:
            raise _Refused(errno.EINVAL)
        if not path.is_file():
            raise _Refused(errno.ENOENT)
        if appender and not self._name_fields(path)[2] & _APPENDER:
            raise _Refused(errno.EINVAL)
        return path

    async def _group_and_file(self, body: _Body) -> Path:
        if body.remaining <= GROUP_LEN:
            raise _Refused(errno.EINVAL)
        group = _unfixed(await body.take(GROUP_LEN))
        remote = (await body.take(body.remaining)).decode(errors="replace")
        if group != self.group:
            raise _Refused(errno.EINVAL)
        return self._existing(remote)

    # -- tracker -------------------------------------------------------------
    def _storage_answer(self) -> bytes:
        return (
            _fixed(self.group, GROUP_LEN)
            + _fixed(self.host, TRACKER_IP_LEN)
            + U64.pack(self.storage_port)
        )

    async def _query_store(self, body: _Body, writer: asyncio.StreamWriter) -> None:
        if body.remaining:
            raise _Refused(errno.EINVAL)
        _reply(writer, self._storage_answer() + b"\0")  # store_path_index 0

    async def _query_store_with_group(self, body: _Body, writer: asyncio.StreamWriter) -> None:
        if body.remaining != GROUP_LEN:
            raise _Refused(errno.EINVAL)
        if _unfixed(await body.take(GROUP_LEN)) != self.group:
            raise _Refused(errno.ENOENT)
        _reply(writer, self._storage_answer() + b"\0")

    async def _query_file(self, body: _Body, writer: asyncio.StreamWriter) -> None:
        if body.remaining <= GROUP_LEN:
            raise _Refused(errno.EINVAL)
        group = _unfixed(await body.take(GROUP_LEN))
        await body.take(body.remaining)
        if group != self.group:
            raise _Refused(errno.ENOENT)
        _reply(writer, self._storage_answer())

    async def _active_test(self, body: _Body, writer: asyncio.StreamWriter) -> None:
        if body.remaining:
            raise _Refused(errno.EINVAL)
        _reply(writer)

    # -- storage -------------------------------------------------------------
    async def _upload_file(self, body: _Body, writer: asyncio.StreamWriter) -> None:
        await self._upload(body, writer, appender=False)

    async def _upload_appender(self, body: _Body, writer: asyncio.StreamWriter) -> None:
        await self._upload(body, writer, appender=True)

    async def _upload(self, body: _Body, writer: asyncio.StreamWriter, *, appender: bool) -> None:
        # store_path_index(1) size(8) ext(6) data
        header = await body.take(1 + 8 + EXT_LEN)
        index, size = header[0], U64.unpack_from(header, 1)[0]
        ext = _unfixed(header[9:])
        if index != 0 or size != body.remaining or not _EXT.fullmatch(ext):
            raise _Refused(errno.EINVAL)
        tmp = self.root / "data" / f".upload-{secrets.token_hex(8)}"
        crc = 0
        try:
            with open(tmp, "wb") as f:
                while body.remaining:
                    data = await body.chunk()
                    crc = zlib.crc32(data, crc)
                    f.write(data)
            remote, path = self._new_name(ext, appender=appender, crc=0 if appender else crc)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _reply(writer, _fixed(self.group, GROUP_LEN) + remote.encode())

    async def _append(self, body: _Body, writer: asyncio.StreamWriter) -> None:
        name_len, size = await body.u64(), await body.u64()
        remote = (await body.take(name_len)).decode(errors="replace")
        if size != body.remaining:
            raise _Refused(errno.EINVAL)
        path = self._existing(remote, appender=True)
        async with self._lock(path):
            await self._write_at(path, None, body)
        _reply(writer)

    async def _modify(self, body: _Body, writer: asyncio.StreamWriter) -> None:
        name_len, offset, size = await body.u64(), await body.u64(), await body.u64()
        remote = (await body.take(name_len)).decode(errors="replace")
        if size != body.remaining:
            raise _Refused(errno.EINVAL)
        path = self._existing(remote, appender=True)
        async with self._lock(path):
            if offset > path.stat().st_size:
                raise _Refused(errno.EINVAL)
            await self._write_at(path, offset, body)
        _reply(writer)

    async def _write_at(self, path: Path, offset: int | None, body: _Body) -> None:
        """Write the rest of ``body`` at ``offset`` (None = append); an
        append cut short is rolled back, as the real storage server does."""
        with open(path, "r+b") as f:
            start = f.seek(0, os.SEEK_END)
            if offset is not None:
                f.seek(offset)
            try:
                while body.remaining:
                    f.write(await body.chunk())
            except BaseException:
                if offset is None:
                    f.truncate(start)
                raise

    async def _truncate(self, body: _Body, writer: asyncio.StreamWriter) -> None:
        name_len, size = await body.u64(), await body.u64()
        remote = (await body.take(name_len)).decode(errors="replace")
        path = self._existing(remote, appender=True)
        async with self._lock(path):
            os.truncate(path, size)  # a larger size extends with zeros
        _reply(writer)

    async def _regenerate(self, body: _Body, writer: asyncio.StreamWriter) -> None:
        if not self.regenerate:
            raise _Refused(errno.EINVAL)  # unknown command before V6.02
        remote = (await body.take(body.remaining)).decode(errors="replace")
        path = self._existing(remote, appender=True)
        async with self._lock(path):
            self._existing(remote)  # still there once the lock is ours
            crc = _file_crc32(path)
            new_remote, new_path = self._new_name(path.suffix[1:], appender=False, crc=crc)
            os.rename(path, new_path)
        _reply(writer, _fixed(self.group, GROUP_LEN) + new_remote.encode())

    async def _delete(self, body: _Body, writer: asyncio.StreamWriter) -> None:
        path = await self._group_and_file(body)
        async with self._lock(path):
            if not path.is_file():
                raise _Refused(errno.ENOENT)
            path.unlink()
        _reply(writer)

    async def _download(self, body: _Body, writer: asyncio.StreamWriter) -> None:
        if body.remaining <= 16 + GROUP_LEN:
            raise _Refused(errno.EINVAL)
        offset, length = await body.u64(), await body.u64()
        path = await self._group_and_file(body)
        size = path.stat().st_size
        if offset >= size or length < 0:
            raise _Refused(errno.EINVAL)  # so an empty file cannot be downloaded
        count = size - offset if length == 0 else min(length, size - offset)
        writer.write(HEADER.pack(count, RESP, 0))
        with open(path, "rb") as f:
            f.seek(offset)
            while count:
                data = f.read(min(CHUNK, count))
                if not data:  # shrunk meanwhile: the answer cannot be completed
                    raise ConnectionError("file shrank during download")
                count -= len(data)
                writer.write(data)
                await writer.drain()

    async def _file_info(self, body: _Body, writer: asyncio.StreamWriter) -> None:
        path = await self._group_and_file(body)
        created, crc, _ = self._name_fields(path)
        answer = U64.pack(path.stat().st_size) + U64.pack(created) + U64.pack(crc)
        _reply(writer, answer + _fixed(self.host, INFO_IP_LEN))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=22122, help="tracker port (0 = any free)")
    parser.add_argument("--storage-port", type=int, default=0, help="storage port (0 = any free)")
    parser.add_argument("--dir", required=True, help="directory for the stored files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--group", default="group1")
    args = parser.parse_args(argv)
    server = FastDFSServer(
        args.dir,
        host=args.host,
        tracker_port=args.port,
        storage_port=args.storage_port,
        group=args.group,
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    server.start()
    print(f"tracker={server.tracker_addr} storage={server.storage_addr}", flush=True)
    try:
        done.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
