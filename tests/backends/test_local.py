"""Local-disk quirks: safe key mapping, layout, where content types live."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backends import local_meta
from backends.base import BackendContext, ObjectInfo, ObjectMeta, StreamInfo
from backends.local import LocalBackend, LocalConfig, encode_key
from gateway.core.budget import Budget
from tests.support.memkv import MemoryKV


@pytest.mark.parametrize(
    "key",
    ["../x", "../../etc/passwd", "/abs/path", "a/../../b", "..", ".", "a//b", "a/", "\x00evil"],
)
def test_keys_never_leave_the_objects_directory(tmp_path: Path, key: str) -> None:
    root = tmp_path / "objects"
    path = (root / encode_key(key)).resolve()
    assert path.is_relative_to(root.resolve())
    assert ".." not in encode_key(key).parts


def test_distinct_keys_map_to_distinct_paths() -> None:
    keys = ["a", "a/b", "a/", "a%d", "a%2Fb", "a/b/c", "", ".", "..", "x" * 300, "x" * 301]
    paths = set()
    for key in keys:
        if not key:
            with pytest.raises(ValueError):
                encode_key(key)
            continue
        paths.add(encode_key(key))
    assert len(paths) == len(keys) - 1


def test_a_key_and_its_directory_can_both_exist() -> None:
    assert encode_key("a") != encode_key("a/b").parent


# -- content types: on the file itself, a sidecar where the filesystem has no xattrs -----


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _backend(root: Path) -> LocalBackend:
    config = LocalConfig(root=str(root))
    return LocalBackend("meta", config, BackendContext(kv=MemoryKV(), budget=Budget(1 << 20)))


async def _stored(
    backend: LocalBackend, key: str, created: str | None, committed: str | None
) -> ObjectInfo | None:
    stream = StreamInfo(os.urandom(8).hex(), key, 5, 0, content_type=created)
    stream.state = await backend.create_stream(stream)
    result = await backend.write(stream, _body(b"hello"))
    stream.offset, stream.state = result.offset, result.state
    stream.state = await backend.finish_stream(stream)
    await backend.commit(stream, key, ObjectMeta(content_type=committed))
    return await backend.stat(key)


def test_the_content_type_travels_with_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A type given at creation is sealed with the bytes (no fsync more at
    commit); one given only at commit costs one fsync; no sidecar file."""
    probe = tmp_path / "probe"
    probe.touch()
    if not local_meta.mark(probe, "text/plain"):
        pytest.skip("this filesystem keeps no user extended attributes")
    backend = _backend(tmp_path)
    fsyncs: list[Path] = []
    real_fsync = local_meta._fsync

    def counting_fsync(path: Path) -> None:
        fsyncs.append(path)
        real_fsync(path)

    monkeypatch.setattr(local_meta, "_fsync", counting_fsync)

    async def check() -> None:
        await backend.start()
        info = await _stored(backend, "a", "text/plain", "text/plain")
        assert info is not None and info.content_type == "text/plain" and fsyncs == []
        info = await _stored(backend, "b", None, "image/png")
        assert info is not None and info.content_type == "image/png" and len(fsyncs) == 1
        info = await _stored(backend, "b", "text/plain", None)  # replaced: no type
        assert info is not None and info.content_type is None

    asyncio.run(check())
    objects = tmp_path / "objects"
    assert local_meta.recorded(objects / encode_key("a")) == "text/plain"
    assert not list(objects.glob(f"*{local_meta.SUFFIX}"))


def test_without_xattrs_a_sidecar_holds_the_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _backend(tmp_path)
    sidecar = local_meta.sidecar(tmp_path / "objects" / encode_key("a"))

    def unsupported(*_: object) -> None:
        raise OSError(errno.ENOTSUP, "no xattrs here")

    async def check() -> None:
        await backend.start()
        monkeypatch.setattr(os, "setxattr", unsupported)
        info = await _stored(backend, "a", "text/plain", "text/plain")
        assert info is not None and info.content_type == "text/plain" and sidecar.exists()
        monkeypatch.undo()  # xattrs again: the old sidecar still reads, then goes
        assert (await backend.stat("a")) == info
        info = await _stored(backend, "a", None, "image/png")
        assert info is not None and info.content_type == "image/png"
        assert not sidecar.exists()

    asyncio.run(check())
