"""FastDFSClient against the FastDFS test server: every command, errno paths,
pooling, tracker failover and timeouts."""

from __future__ import annotations

import asyncio
import errno
import os
import zlib
from collections.abc import AsyncIterator

import pytest

from backends.errors import BackendUnavailable, InvalidState, NotFound
from backends.fastdfs.client import FastDFSClient, StreamBody
from backends.fastdfs.protocol import FastDFSNotFound, FastDFSRejected
from testservers.fastdfs_server import FastDFSServer
from testservers.ports import free_port

from .helpers import MiB, addr, chunks, client_for, run


def rejected_with(status: int) -> pytest.RaisesExc[FastDFSRejected]:
    return pytest.raises(FastDFSRejected, match=rf"errno {status}\b")


def test_tracker_queries(server: FastDFSServer) -> None:
    async def main() -> None:
        client = client_for(server)
        try:
            await client.active_test(addr(server.tracker_addr))
            await client.active_test(addr(server.storage_addr))
            target = await client.query_store()
            assert (target.group, target.host, target.port) == (
                "group1",
                "127.0.0.1",
                server.storage_port,
            )
            assert target.store_path_index == 0
            assert (await client.query_store("group1")).addr == target.addr
            with pytest.raises(FastDFSNotFound):
                await client.query_store("nogroup")
            file_id = await client.upload(b"x")
            assert (await client.query_fetch(file_id)).addr == target.addr
            assert (await client.query_update(file_id)).addr == target.addr
            with pytest.raises(NotFound):
                await client.query_update("group9/M00/00/00/whatever")
        finally:
            await client.close()

    run(main())


def test_upload_download_and_info(server: FastDFSServer) -> None:
    data = os.urandom(3 * MiB + 5)

    async def main() -> None:
        client = client_for(server)
        try:
            file_id = await client.upload(data, ext="jpg")
            assert file_id.startswith("group1/M00/") and file_id.endswith(".jpg")
            assert server.path_of(file_id).read_bytes() == data
            info = await client.file_info(file_id)
            assert info.size == len(data) and info.crc32 == zlib.crc32(data)
            assert info.source_ip == "127.0.0.1"
            assert await client.download(file_id) == data
            assert await client.download(file_id, 10, 20) == data[10:30]
            assert await client.download(file_id, MiB) == data[MiB:]  # 0 = to the end
            # a length past EOF is clamped
            async with client.open_download(file_id, len(data) - 3, 100) as dl:
                assert dl.size == 3
                assert await dl.read_all() == data[-3:]
            with rejected_with(errno.EINVAL):
                await client.download(file_id, len(data))  # offset at EOF
            with rejected_with(errno.EINVAL):
                await client.append(file_id, b"more")  # not an appender file
            with rejected_with(errno.EINVAL):
                await client.modify(file_id, 0, b"x")
            with rejected_with(errno.EINVAL):
                await client.truncate(file_id, 1)
            with rejected_with(errno.EINVAL):
                await client.regenerate_appender_filename(file_id)
            assert await client.download(file_id) == data  # untouched
        finally:
            await client.close()

    run(main())


def test_appender_lifecycle(server: FastDFSServer) -> None:
    async def main() -> None:
        client = client_for(server)
        try:
            file_id = await client.upload_appender(b"", ext="bin")
            assert (await client.file_info(file_id)).size == 0
            with rejected_with(errno.EINVAL):
                await client.download(file_id)  # an empty file cannot be downloaded
            await client.append(file_id, b"hello ")
            await client.append(file_id, b"world")
            assert await client.download(file_id) == b"hello world"
            # modify: inside, from EOF (extends), across EOF; past EOF is EINVAL
            await client.modify(file_id, 0, b"J")
            await client.modify(file_id, 11, b"!")
            await client.modify(file_id, 10, b"D??")
            assert await client.download(file_id) == b"Jello worlD??"
            with rejected_with(errno.EINVAL):
                await client.modify(file_id, 14, b"gap")
            # truncate shrinks, and extends with zeros
            await client.truncate(file_id, 5)
            assert await client.download(file_id) == b"Jello"
            await client.truncate(file_id, 8)
            assert await client.download(file_id) == b"Jello\0\0\0"
            # regenerate: new normal id, the old id is gone
            new_id = await client.regenerate_appender_filename(file_id)
            assert new_id != file_id and new_id.endswith(".bin")
            assert await client.download(new_id) == b"Jello\0\0\0"
            with pytest.raises(FastDFSNotFound, match=r"errno 2\b"):
                await client.file_info(file_id)
            with pytest.raises(NotFound):
                await client.append(file_id, b"x")
            with rejected_with(errno.EINVAL):
                await client.append(new_id, b"x")  # no longer appendable
            assert (await client.file_info(new_id)).crc32 == zlib.crc32(b"Jello\0\0\0")
            assert server.files(appender=True) == []
            # delete, then everything about it is ENOENT
            await client.delete(new_id)
            for call in (client.delete, client.file_info, client.download):
                with pytest.raises(FastDFSNotFound):
                    await call(new_id)
            assert server.files() == []
        finally:
            await client.close()

    run(main())


def test_appender_upload_with_data_and_streamed_append(server: FastDFSServer) -> None:
    head, tail = os.urandom(100_000), os.urandom(2 * MiB + 1)

    async def main() -> None:
        client = client_for(server)
        try:
            file_id = await client.upload_appender(head)
            await client.append(file_id, StreamBody(len(tail), chunks(tail, 65536)))
            assert await client.download(file_id) == head + tail
            # a stream that ends early: error, and the storage rolls the append back
            with pytest.raises(InvalidState):
                await client.append(file_id, StreamBody(len(tail) + 1, chunks(tail, 65536)))
            with pytest.raises(InvalidState):
                await client.append(file_id, StreamBody(10, chunks(tail[:20], 65536)))
            await asyncio.sleep(0.1)  # let the server see the dropped connection
            assert (await client.file_info(file_id)).size == len(head) + len(tail)
        finally:
            await client.close()

    run(main())


def test_source_failure_mid_append_rolls_back(server: FastDFSServer) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        raise BackendUnavailable("source went away")

    async def main() -> None:
        client = client_for(server)
        try:
            file_id = await client.upload_appender(b"base")
            with pytest.raises(BackendUnavailable, match="source went away"):
                await client.append(file_id, StreamBody(5000, broken()))
            await asyncio.sleep(0.1)
            assert await client.download(file_id) == b"base"
        finally:
            await client.close()

    run(main())


def test_malformed_and_unknown_requests(server: FastDFSServer) -> None:
    async def main() -> None:
        client = client_for(server)
        try:
            with pytest.raises(FastDFSRejected):  # not a name this server makes
                await client.file_info("group1/M00/00/00/../../etc/passwd")
            with pytest.raises(FastDFSRejected):  # wrong group for this storage
                await client.file_info("group2/M00/00/00/x", storage=addr(server.storage_addr))
            with pytest.raises(ValueError):
                await client.file_info("no-slash")
            with pytest.raises(ValueError):
                await client.upload(b"x", ext="toolong")
        finally:
            await client.close()

    run(main())


def test_old_server_rejects_regenerate(old_server: FastDFSServer) -> None:
    async def main() -> None:
        client = client_for(old_server)
        try:
            file_id = await client.upload_appender(b"data")
            with rejected_with(errno.EINVAL):
                await client.regenerate_appender_filename(file_id)
            assert await client.download(file_id) == b"data"
        finally:
            await client.close()

    run(main())


def test_connections_are_pooled(server: FastDFSServer) -> None:
    async def main() -> None:
        client = client_for(server)
        try:
            file_id = await client.upload_appender(b"")
            for _ in range(20):
                await client.append(file_id, b"x" * 100)
                await client.file_info(file_id)
            assert await client.download(file_id) == b"x" * 2000
        finally:
            await client.close()

    run(main())
    assert server.accepted == {"tracker": 1, "storage": 1}


def test_error_answer_closes_the_connection(server: FastDFSServer) -> None:
    async def main() -> None:
        client = client_for(server)
        try:
            file_id = await client.upload(b"normal")
            with pytest.raises(FastDFSRejected):
                await client.append(file_id, b"x")
            assert await client.download(file_id) == b"normal"
        finally:
            await client.close()

    run(main())
    assert server.accepted["storage"] == 2


def test_dead_pooled_connection_is_replaced(server: FastDFSServer) -> None:
    async def main() -> None:
        client = client_for(server)
        try:
            file_id = await client.upload(b"abc")
            server.stop_storage()
            server.start_storage()  # drops the pooled connection
            await asyncio.sleep(0.05)
            assert await client.download(file_id) == b"abc"
            assert (await client.file_info(file_id)).size == 3
        finally:
            await client.close()

    run(main())


def test_tracker_failover(server: FastDFSServer) -> None:
    async def main() -> None:
        dead = ("127.0.0.1", free_port())
        client = FastDFSClient([dead, addr(server.tracker_addr)], connect_timeout=1)
        try:
            assert (await client.query_store()).port == server.storage_port
            assert (await client.query_store()).port == server.storage_port
        finally:
            await client.close()
        alone = FastDFSClient([dead], connect_timeout=1)
        with pytest.raises(BackendUnavailable, match="no FastDFS tracker answered"):
            await alone.query_store()
        await alone.close()

    run(main())


def test_storage_down_is_unavailable(server: FastDFSServer) -> None:
    async def main() -> None:
        client = client_for(server, connect_timeout=1)
        try:
            file_id = await client.upload_appender(b"x")
            server.stop_storage()
            with pytest.raises(BackendUnavailable) as caught:
                await client.append(file_id, b"y")
            assert not isinstance(caught.value, (NotFound, InvalidState))
            server.start_storage()
            await client.append(file_id, b"y")
            assert await client.download(file_id) == b"xy"
        finally:
            await client.close()

    run(main())


def test_silent_server_times_out() -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # never answers
            writer.close()

        listener = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        client = FastDFSClient([("127.0.0.1", port)], network_timeout=0.3)
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(BackendUnavailable):
            await client.query_store()
        assert loop.time() - began < 3
        await client.close()
        listener.close()
        await listener.wait_closed()

    run(main())
