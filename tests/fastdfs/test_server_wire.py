"""The FastDFS test server on the wire, byte by byte (no client library), its
restart on the same directory, and its command-line entry point."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

from testservers.fastdfs_server import FastDFSServer
from testservers.ports import free_port, wait_for_port

from .helpers import client_for, run

HEADER = struct.Struct(">QBB")


def exchange(port: int, cmd: int, body: bytes = b"") -> tuple[int, int, bytes]:
    """One request on a fresh connection → (status, cmd, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(HEADER.pack(len(body), cmd, 0) + body)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> tuple[int, int, bytes]:
    header = recv_exact(sock, 10)
    length, cmd, status = HEADER.unpack(header)
    return status, cmd, recv_exact(sock, length)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        part = sock.recv(size - len(data))
        assert part, "connection closed early"
        data += part
    return data


def test_header_and_field_widths(server: FastDFSServer) -> None:
    tracker, storage = server.tracker_port, server.storage_port
    assert exchange(tracker, 111) == (0, 100, b"")
    assert exchange(storage, 111) == (0, 100, b"")

    status, cmd, body = exchange(tracker, 101)
    assert (status, cmd, len(body)) == (0, 100, 16 + 15 + 8 + 1)
    assert body[:16] == b"group1".ljust(16, b"\0")
    assert body[16:31] == b"127.0.0.1".ljust(15, b"\0")
    assert struct.unpack(">Q", body[31:39])[0] == storage and body[39] == 0

    status, _, body = exchange(tracker, 104, b"group1".ljust(16, b"\0"))
    assert status == 0 and len(body) == 40
    assert exchange(tracker, 104, b"nope".ljust(16, b"\0"))[0] == 2

    # upload: store_path_index(1) size(8) ext(6) data → group(16) + name
    data = b"wire bytes"
    req = bytes([0]) + struct.pack(">Q", len(data)) + b"txt".ljust(6, b"\0") + data
    status, _, body = exchange(storage, 11, req)
    assert status == 0 and body[:16] == b"group1".ljust(16, b"\0")
    remote = body[16:].decode()
    assert remote.startswith("M00/") and remote.endswith(".txt")
    group_and_name = b"group1".ljust(16, b"\0") + remote.encode()

    status, _, body = exchange(tracker, 102, group_and_name)
    assert status == 0 and len(body) == 16 + 15 + 8
    assert exchange(tracker, 103, group_and_name)[2] == body

    # query file info → size(8) create_time(8) crc32(8) source ip(16)
    status, _, body = exchange(storage, 22, group_and_name)
    assert status == 0 and len(body) == 40
    assert struct.unpack(">Q", body[:8])[0] == len(data)
    assert body[24:] == b"127.0.0.1".ljust(16, b"\0")

    # download: offset(8) bytes(8) group(16) name
    req = struct.pack(">QQ", 5, 0) + group_and_name
    assert exchange(storage, 14, req) == (0, 100, data[5:])

    # an upload whose declared size disagrees with the package: EINVAL
    req = bytes([0]) + struct.pack(">Q", 99) + b"\0" * 6 + data
    assert exchange(storage, 11, req)[0] == 22


def test_unknown_command_keeps_the_connection(server: FastDFSServer) -> None:
    with socket.create_connection(("127.0.0.1", server.storage_port), timeout=5) as sock:
        sock.sendall(HEADER.pack(5, 13, 0) + b"12345")  # set metadata: not implemented
        assert read_answer(sock) == (22, 100, b"")
        sock.sendall(HEADER.pack(0, 111, 0))
        assert read_answer(sock) == (0, 100, b"")


def test_restart_on_the_same_directory(tmp_path: Path) -> None:
    root = tmp_path / "store"

    async def first(srv: FastDFSServer) -> tuple[str, str]:
        client = client_for(srv)
        appender = await client.upload_appender(b"abc")
        normal = await client.upload(b"xyz")
        await client.close()
        return appender, normal

    async def second(srv: FastDFSServer, appender: str, normal: str) -> None:
        client = client_for(srv)
        await client.append(appender, b"def")
        assert await client.download(appender) == b"abcdef"
        assert await client.download(normal) == b"xyz"
        await client.close()

    with FastDFSServer(root) as srv:
        appender, normal = run(first(srv))
    with FastDFSServer(root) as srv:
        run(second(srv, appender, normal))
    assert root.exists()  # a directory given by the caller is kept


def test_command_line(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "testservers.fastdfs_server",
            "--port",
            str(port),
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith(f"tracker=127.0.0.1:{port} storage=127.0.0.1:")
        wait_for_port(port, timeout=10, procs=[proc])
        assert exchange(port, 111) == (0, 100, b"")
        storage_port = int(line.rsplit(":", 1)[1])
        data = b"from the cli"
        req = bytes([0]) + struct.pack(">Q", len(data)) + b"\0" * 6 + data
        assert exchange(storage_port, 23, req)[0] == 0
        assert any((tmp_path / "data").rglob("*"))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
