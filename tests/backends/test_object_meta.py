"""``ObjectMeta`` on every backend: the content type given to ``commit`` /
``assemble`` is what ``stat`` reads back, a replacing object drops it, and
``stat``'s ``version`` changes when the object at a key is replaced."""

from __future__ import annotations

import os

from backends.base import Backend, ObjectMeta, StreamInfo
from tests.backends.test_conformance import key_for, new_stream, read_all, with_backend, write
from tests.support.targets import Target

MiB = 1024 * 1024


async def _finished(backend: Backend, data: bytes) -> StreamInfo:
    stream = await new_stream(backend, len(data))
    await write(backend, stream, data)
    stream.state = await backend.finish_stream(stream)
    return stream


def test_commit_keeps_the_content_type(target: Target) -> None:
    async def body(backend: Backend) -> None:
        key = key_for("typed.bin")
        stream = await _finished(backend, b"first")
        await backend.commit(stream, key, ObjectMeta(content_type="image/x-gateway-test"))
        first = await backend.stat(key)
        assert first is not None and first.content_type == "image/x-gateway-test"
        assert first.version

        stream = await _finished(backend, b"second")
        await backend.commit(stream, key)  # replaced, no type given
        second = await backend.stat(key)
        assert second is not None and second.content_type != "image/x-gateway-test"
        assert second.version and second.version != first.version
        assert await read_all(backend, key) == b"second"
        await backend.delete_object(key)
        assert await backend.stat(key) is None

    with_backend(target, body)


def test_assemble_keeps_the_content_type(target: Target) -> None:
    async def body(backend: Backend) -> None:
        key = key_for("joined")
        pieces = [os.urandom(MiB + 3), os.urandom(1000)]
        streams = [await _finished(backend, p) for p in pieces]
        info = await backend.assemble(streams, key, ObjectMeta(content_type="video/x-joined"))
        assert info.size == sum(len(p) for p in pieces)
        stat = await backend.stat(key)
        assert stat is not None and stat.content_type == "video/x-joined"
        assert await read_all(backend, key) == b"".join(pieces)
        for stream in streams:
            await backend.discard_stream(stream)
        await backend.delete_object(key)

    with_backend(target, body)
