"""The Swift backend driven directly: layout, ownership, auth, start-up errors."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from backends.base import BackendContext, ObjectMeta, StreamInfo
from backends.errors import BackendConfigError, BackendError, BackendUnavailable, Exists
from backends.swift import SwiftBackend, SwiftConfig
from backends.swift.client import object_store_url
from backends.swift.layout import dump_segments, stream_prefix
from gateway.core.budget import Budget
from tests.support.memkv import MemoryKV
from tests.swift.account import SwiftAccount
from testservers.ports import free_port

MiB = 1024 * 1024


@contextlib.asynccontextmanager
async def opened(config: dict[str, Any]) -> AsyncIterator[SwiftBackend]:
    backend = SwiftBackend(
        "test",
        SwiftConfig.model_validate(config),
        BackendContext(kv=MemoryKV(), budget=Budget(64 * MiB)),
    )
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def write(backend: SwiftBackend, stream: StreamInfo, data: bytes) -> None:
    """Write and commit as the core does."""
    result = await backend.write(stream, chunks(data))
    stream.offset, stream.state = result.offset, result.state
    if result.after_commit:
        await result.after_commit()


async def finished(backend: SwiftBackend, *pieces: bytes) -> StreamInfo:
    stream = StreamInfo(secrets.token_hex(16), None, sum(map(len, pieces)), 0)
    stream.state = await backend.create_stream(stream)
    for piece in pieces:
        await write(backend, stream, piece)
    stream.state = await backend.finish_stream(stream)
    return stream


async def read_all(backend: SwiftBackend, key: str) -> bytes:
    return b"".join([c async for c in backend.read(key)])


def names(stream: StreamInfo) -> list[str]:
    return [n for n, _, _ in stream.state["segments"]]


def test_segments_are_cut_named_by_offset_and_tails_are_packed(
    swift_config: dict[str, Any], account: SwiftAccount
) -> None:
    seg = swift_config["container"] + "_segments"
    config = {**swift_config, "min_segment_size": MiB, "max_segment_size": 4 * MiB}
    data = os.urandom(13 * MiB + 5)

    async def main() -> None:
        async with opened(config) as backend:
            stream = StreamInfo(secrets.token_hex(16), None, None, 0)
            stream.state = await backend.create_stream(stream)
            await write(backend, stream, data[:300_000])
            await write(backend, stream, data[300_000:600_000])  # rewrites the tail
            assert names(stream) == [f"{stream.id}/{0:016x}-{300_000:016x}"]
            await write(backend, stream, data[600_000:])
            sizes = [s for _, s, _ in stream.state["segments"]]
            assert sizes == [4 * MiB, 4 * MiB, 4 * MiB, len(data) - 12 * MiB]
            assert names(stream)[1] == f"{stream.id}/{4 * MiB:016x}-{600_000:016x}"
            # only the live segments are stored: the superseded tails are gone
            assert sorted(account.names(seg, stream.id)) == sorted(names(stream))
            got = b"".join([c async for c in backend.read_stream(stream, 5, 9 * MiB)])
            assert got == data[5 : 9 * MiB]
            await backend.discard_stream(stream)
            assert account.names(seg) == []

    asyncio.run(main())


def test_rollback_and_interrupted_bodies(
    swift_config: dict[str, Any], account: SwiftAccount
) -> None:
    seg = swift_config["container"] + "_segments"
    good, bad = os.urandom(500_000), os.urandom(3 * MiB)

    async def main() -> None:
        async with opened(swift_config) as backend:
            stream = StreamInfo(secrets.token_hex(16), None, None, 0)
            stream.state = await backend.create_stream(stream)
            await write(backend, stream, good)
            result = await backend.write(stream, chunks(bad))
            assert result.offset == len(good) + len(bad) and result.rollback is not None
            await result.rollback()  # the old tail stays, the new segment goes
            assert account.names(seg, stream.id) == names(stream)
            await backend.discard_stream(stream)
            assert account.names(seg) == []

    asyncio.run(main())


def test_assembled_parts_belong_to_the_object(
    swift_config: dict[str, Any], account: SwiftAccount
) -> None:
    container, seg = swift_config["container"], swift_config["container"] + "_segments"
    pieces = [os.urandom(2 * MiB + 1), os.urandom(700_000), os.urandom(5 * MiB)]

    async def main() -> None:
        async with opened(swift_config) as backend:
            streams = [await finished(backend, p) for p in pieces]
            info = await backend.assemble(streams, "joined.bin")
            assert info.size == sum(map(len, pieces))
            for s in streams:
                await backend.discard_stream(s)
                await backend.discard_stream(s)  # twice: still nothing in use goes
            assert await read_all(backend, "joined.bin") == b"".join(pieces)
            leaves = account.segments_of(container, "joined.bin")
            assert [n for _, n, _ in leaves] == [n for s in streams for n in names(s)]
            assert account.orphans(container, seg) == []
            # another object made of the same stream (a tus partial in a second
            # final, listed twice) gets copies: deleting either keeps the other
            again = await backend.assemble([streams[0], streams[1], streams[0]], "again.bin")
            expected = pieces[0] + pieces[1] + pieces[0]
            assert again.size == len(expected)
            assert await read_all(backend, "again.bin") == expected
            taken = {n for _, n, _ in account.segments_of(container, "again.bin")}
            assert not taken & {n for s in streams for n in names(s)}  # copies, not joined's
            assert account.orphans(container, seg) == []
            await backend.delete_object("joined.bin")
            assert await read_all(backend, "again.bin") == expected
            await backend.delete_object("again.bin")
            assert account.names(seg) == [] and account.names(container) == []

    asyncio.run(main())


def fail_manifest_puts(backend: SwiftBackend, key: str, copies_fail: bool = False) -> list[str]:
    """A fault: Swift answers 503 to the manifest PUT of ``key`` (and, with
    ``copies_fail``, to the second server-side copy of a segment); the
    requests refused are listed."""
    refused: list[str] = []
    real = backend.client.call
    copies = 0

    async def call(
        method: str, container: str | None = None, name: str | None = None, **kw: Any
    ) -> Any:
        nonlocal copies
        query, headers = kw.get("query") or {}, kw.get("headers") or {}
        if method == "PUT" and name == key and "multipart-manifest" in query:
            refused.append(f"manifest {name}")
            raise backend.client.unavailable(f"PUT {name} answered 503 (injected)")
        if method == "PUT" and "X-Copy-From" in headers:
            copies += 1
            if copies_fail and copies == 2:
                refused.append(f"copy {name}")
                raise backend.client.unavailable(f"PUT {name} answered 503 (injected)")
        return await real(method, container, name, **kw)

    backend.client.call = call  # type: ignore[method-assign]
    return refused


def test_copies_of_a_failed_assembly_are_deleted(
    swift_config: dict[str, Any], account: SwiftAccount
) -> None:
    """A partial in a second final is copied for it; when the manifest write
    (or a copy) fails, the copies made are deleted, not left behind."""
    container, seg = swift_config["container"], swift_config["container"] + "_segments"
    config = {**swift_config, "min_segment_size": MiB, "max_segment_size": MiB}
    pieces = [os.urandom(3 * MiB + 5), os.urandom(700_000)]

    async def main() -> None:
        async with opened(config) as backend:
            streams = [await finished(backend, p) for p in pieces]
            await backend.assemble(streams, "first.bin")
            real_call = backend.client.call
            for copies_fail in (False, True):
                refused = fail_manifest_puts(backend, "second.bin", copies_fail)
                with pytest.raises(BackendUnavailable):
                    await backend.assemble([streams[0], streams[1]], "second.bin")
                assert refused, "the fault was not hit"
                backend.client.call = real_call  # type: ignore[method-assign]
                assert account.orphans(container, seg) == [], copies_fail
            # the store works again: the assembly is made, first.bin untouched
            await backend.assemble([streams[0], streams[1]], "second.bin")
            assert await read_all(backend, "second.bin") == b"".join(pieces)
            assert await read_all(backend, "first.bin") == b"".join(pieces)
            assert account.orphans(container, seg) == []
            await backend.delete_object("first.bin")
            await backend.delete_object("second.bin")
            assert account.names(seg) == [] and account.names(container) == []

    asyncio.run(main())


def test_replacing_an_object_deletes_the_old_segments(
    swift_config: dict[str, Any], account: SwiftAccount
) -> None:
    container, seg = swift_config["container"], swift_config["container"] + "_segments"
    first, second = os.urandom(3 * MiB), os.urandom(MiB + 3)

    async def main() -> None:
        async with opened(swift_config) as backend:
            old = await finished(backend, first)
            await backend.commit(old, "same-key")
            await backend.commit(old, "same-key")  # a repeated commit changes nothing
            assert sorted(account.names(seg)) == sorted([*names(old), f"{old.id}/owner"])
            new = await finished(backend, second)
            await backend.commit(new, "same-key")
            assert await read_all(backend, "same-key") == second
            assert sorted(account.names(seg)) == sorted([*names(new), f"{new.id}/owner"])
            await backend.delete_object("same-key")
            assert account.names(seg) == [] and account.names(container) == []

    asyncio.run(main())


def test_a_committed_stream_survives_a_late_discard(
    swift_config: dict[str, Any], account: SwiftAccount
) -> None:
    # the gateway died after commit, before saving; the upload then expired
    data = os.urandom(2 * MiB)

    async def main() -> None:
        async with opened(swift_config) as backend:
            stream = await finished(backend, data)
            await backend.commit(stream, "kept")
            await backend.discard_stream(stream)
            assert await read_all(backend, "kept") == data
            await backend.delete_object("kept")
            assert account.names(swift_config["container"] + "_segments") == []

    asyncio.run(main())


def record_requests(backend: SwiftBackend) -> list[str]:
    """Log every request the backend sends to Swift as ``METHOD what``: the
    container (``container`` / ``segments``), ``/owner`` for a marker, and the
    query or ``If-None-Match`` that changes what Swift does."""
    log: list[str] = []
    real = backend.client.request
    seg = backend.segments

    def request(
        method: str, container: str | None = None, name: str | None = None, **kw: Any
    ) -> Any:
        what = "account" if container is None else ("segments" if container == seg else "container")
        if name is not None and name.endswith("/owner"):
            what += "/owner"
        if kw.get("query"):
            what += "?" + ",".join(sorted(kw["query"]))
        if (kw.get("headers") or {}).get("If-None-Match"):
            what += " if-none-match"
        log.append(f"{method} {what}")
        return real(method, container, name, **kw)

    backend.client.request = request  # type: ignore[method-assign]
    return log


def test_requests_of_a_small_upload(swift_config: dict[str, Any], account: SwiftAccount) -> None:
    """A tus upload of one segment committed to its own key, its object made
    only at commit (a hook to ask, a checksum to check): the segment, the
    manifest and one listing page; no marker, no read of an old object."""
    container, seg = swift_config["container"], swift_config["container"] + "_segments"
    data = os.urandom(MiB)

    async def main() -> None:
        async with opened(swift_config) as backend:
            log = record_requests(backend)
            stream = StreamInfo(secrets.token_hex(16), "small.bin", len(data), 0)
            stream.early_object = False
            stream.state = await backend.create_stream(stream)
            await write(backend, stream, data)
            stream.state = await backend.finish_stream(stream)
            await backend.commit(stream, "small.bin")
            assert log == [
                "PUT segments",
                "PUT container?multipart-manifest if-none-match",
                "GET segments?format,limit,prefix",
            ]
            assert sorted(account.names(seg)) == names(stream)  # no marker
            # a late discard (crash before the record was saved) keeps it whole
            await backend.discard_stream(stream)
            assert await read_all(backend, "small.bin") == data
            assert account.orphans(container, seg) == []

            # a stream without a key of its own (a Qiniu form file) gets a
            # marker; replacing an object reads it once Swift says it exists
            other = await finished(backend, data[:1000])
            del log[:]
            await backend.commit(other, "small.bin")
            assert log == [
                "PUT segments/owner",
                "PUT container?multipart-manifest if-none-match",
                "GET container?multipart-manifest",
                "PUT container?multipart-manifest",
                "DELETE segments",
                "DELETE segments/owner",
                "GET segments?format,limit,prefix",
            ]
            assert await read_all(backend, "small.bin") == data[:1000]
            assert sorted(account.names(seg)) == sorted([*names(other), f"{other.id}/owner"])
            await backend.delete_object("small.bin")
            assert account.names(seg) == [] and account.names(container) == []

    asyncio.run(main())


def plain_stream(key: str, data: bytes, **fields: Any) -> StreamInfo:
    stream = StreamInfo(secrets.token_hex(16), key, len(data), 0, dump_segments([]), **fields)
    digest = hashlib.sha256(data).hexdigest()
    stream.sha256 = lambda: digest  # as the core's, once every byte has passed
    return stream


def test_a_small_object_written_whole_is_one_plain_put(
    swift_config: dict[str, Any], account: SwiftAccount
) -> None:
    """A small upload whose bytes arrive in one write, its object made by
    that write: one PUT of a plain object (If-None-Match: *), with its type,
    lifetime and SHA-256; commit moves nothing; no segment, no listing."""
    container, seg = swift_config["container"], swift_config["container"] + "_segments"
    data = os.urandom(MiB)
    delete_at = int(time.time()) + 86400

    async def main() -> None:
        async with opened(swift_config) as backend:
            log = record_requests(backend)
            stream = plain_stream(  # as a Qiniu form file: written whole by its creator
                "plain.bin", data, content_type="image/png", delete_at=delete_at, one_write=True
            )
            assert backend.limits.create_if_absent == swift_config.get("plain_object_size", 8 * MiB)
            await write(backend, stream, data)
            stream.state = await backend.finish_stream(stream)
            info = await backend.commit(stream, "plain.bin", ObjectMeta("image/png", delete_at))
            assert log == ["PUT container if-none-match"]
            assert info.size == len(data) and info.etag == hashlib.md5(data).hexdigest()
            head = account.request("HEAD", f"{container}/plain.bin").headers
            assert "X-Static-Large-Object" not in head
            assert head["Content-Type"] == "image/png"
            assert head["X-Delete-At"] == str(delete_at)
            assert head["X-Object-Meta-Sha256"] == hashlib.sha256(data).hexdigest()
            assert account.names(seg) == []
            got = b"".join([c async for c in backend.read_stream(stream, 5, 5000)])
            assert got == data[5:5000]
            # a late discard (crash before the record was saved) keeps it
            await backend.discard_stream(stream)
            assert await read_all(backend, "plain.bin") == data
            # metadata that changed since the write: one POST at commit
            del log[:]
            await backend.commit(stream, "plain.bin", ObjectMeta("text/plain"))
            assert log == ["POST container"]
            head = account.request("HEAD", f"{container}/plain.bin").headers
            assert head["Content-Type"] == "text/plain" and "X-Delete-At" not in head
            assert head["X-Object-Meta-Sha256"] == hashlib.sha256(data).hexdigest()
            await backend.delete_object("plain.bin")
            assert account.names(container) == []

    asyncio.run(main())


def test_a_crashed_writes_segment_is_found_at_a_plain_commit(
    swift_config: dict[str, Any], account: SwiftAccount
) -> None:
    """A write cut by a gateway crash stored a segment, its state never
    saved; the stream's next write brought every byte (one plain PUT). The
    commit still lists the stream's prefix and deletes that segment — except
    for a stream written whole by the call that created it (nothing before)."""
    seg = swift_config["container"] + "_segments"
    data = os.urandom(MiB)

    async def main() -> None:
        async with opened(swift_config) as backend:
            stream = plain_stream("after-crash.bin", data)
            ghost = plain_stream("after-crash.bin", data)
            ghost.id = stream.id
            await write(backend, ghost, data[: MiB // 2])  # stored, state lost
            assert [n for n in account.names(seg) if n.startswith(stream_prefix(stream.id))]
            await write(backend, stream, data)
            stream.state = await backend.finish_stream(stream)
            log = record_requests(backend)
            await backend.commit(stream, "after-crash.bin")
            assert "GET segments?format,prefix" in log or any(
                e.startswith("GET segments") for e in log
            )
            left = [n for n in account.names(seg) if n.startswith(stream_prefix(stream.id))]
            assert [n for n in left if not n.endswith("/owner")] == []
            assert await read_all(backend, "after-crash.bin") == data
            await backend.delete_object("after-crash.bin")

    asyncio.run(main())


def test_a_plain_object_replacing_an_slo_leaves_no_segments(
    swift_config: dict[str, Any], account: SwiftAccount
) -> None:
    """Over an SLO object (here with a marker: made from a stream without a
    key of its own), the conditional PUT is refused, the old manifest read,
    the PUT sent again and the old segments and marker deleted."""
    container, seg = swift_config["container"], swift_config["container"] + "_segments"
    old, new = os.urandom(3 * MiB), os.urandom(200_000)

    async def main() -> None:
        async with opened(swift_config) as backend:
            await backend.commit(await finished(backend, old), "k")
            assert account.manifest(container, "k") is not None and account.names(seg)
            log = record_requests(backend)
            stream = plain_stream("k", new)
            await write(backend, stream, new)
            assert log[:3] == [
                "PUT container if-none-match",
                "GET container?multipart-manifest",
                "PUT container",
            ]
            assert set(log[3:]) == {"DELETE segments", "DELETE segments/owner"}
            stream.state = await backend.finish_stream(stream)
            await backend.commit(stream, "k")
            assert await read_all(backend, "k") == new
            assert account.manifest(container, "k") is None
            assert account.names(seg) == []  # nothing orphaned
            # replacing a plain object: the same three requests, nothing to delete
            newer = os.urandom(1000)
            del log[:]
            stream = plain_stream("k", newer)
            await write(backend, stream, newer)
            assert log == [
                "PUT container if-none-match",
                "GET container?multipart-manifest",
                "PUT container",
            ]
            assert await read_all(backend, "k") == newer
            await backend.delete_object("k")
            assert account.names(container) == [] and account.names(seg) == []

    asyncio.run(main())


def test_insert_only_refusal_stores_nothing(
    swift_config: dict[str, Any], account: SwiftAccount
) -> None:
    container, seg = swift_config["container"], swift_config["container"] + "_segments"
    first, second = os.urandom(100_000), os.urandom(4 * MiB)  # refused before its end

    async def main() -> None:
        async with opened(swift_config) as backend:
            stream = plain_stream("taken", first, if_absent=True)
            await write(backend, stream, first)
            again = plain_stream("taken", second, if_absent=True)
            with pytest.raises(Exists):
                await backend.write(again, chunks(second))
            assert await read_all(backend, "taken") == first
            assert account.names(seg) == [] and account.names(container) == ["taken"]
            # a write that cannot be the one conditional PUT is refused
            late = plain_stream("taken", second, if_absent=True, early_object=False)
            with pytest.raises(BackendError):
                await backend.write(late, chunks(second))
            assert account.names(seg) == []
            await backend.delete_object("taken")

    asyncio.run(main())


def test_a_short_body_is_kept_as_segments_and_rollback_deletes(
    swift_config: dict[str, Any], account: SwiftAccount
) -> None:
    """A body that ends before the stream's length (a client gone) is
    written as segments, as any write: what arrived is kept. A plain object
    the core then refuses (rollback) is deleted."""
    container, seg = swift_config["container"], swift_config["container"] + "_segments"
    data = os.urandom(2 * MiB)

    async def main() -> None:
        async with opened(swift_config) as backend:
            stream = plain_stream("cut", data)
            await write(backend, stream, data[:MiB])
            assert stream.offset == MiB and len(names(stream)) == 1
            assert account.names(container) == []
            await write(backend, stream, data[MiB:])  # the rest: segments, then a manifest
            stream.state = await backend.finish_stream(stream)
            await backend.commit(stream, "cut")
            assert account.manifest(container, "cut") is not None
            assert await read_all(backend, "cut") == data
            await backend.delete_object("cut")

            announced = plain_stream("announced", data, incoming=MiB)  # fewer bytes: segments
            log = record_requests(backend)
            await write(backend, announced, data[:MiB])
            assert log == ["PUT segments"] and account.names(container) == []
            await backend.discard_stream(announced)

            refused = plain_stream("refused", data)
            result = await backend.write(refused, chunks(data))
            assert result.rollback is not None and account.names(container) == ["refused"]
            await result.rollback()
            assert account.names(container) == [] and account.names(seg) == []

    asyncio.run(main())


def test_reauthenticates_when_the_token_is_refused(swift_config: dict[str, Any]) -> None:
    async def main() -> None:
        async with opened(swift_config) as backend:
            creds = await backend.client.credentials()
            backend.client._creds = type(creds)(creds.storage_url, "AUTH_tkbogus", None)
            stream = await finished(backend, b"hello")
            await backend.commit(stream, "hello.txt")
            assert await read_all(backend, "hello.txt") == b"hello"
            assert backend.client._creds.token != "AUTH_tkbogus"
            await backend.delete_object("hello.txt")

    asyncio.run(main())


def test_start_up_errors_are_clear(swift_config: dict[str, Any]) -> None:
    async def fails(config: dict[str, Any], error: type[Exception], words: str) -> None:
        with pytest.raises(error) as info:
            async with opened(config):
                pass
        assert words in str(info.value), str(info.value)

    async def main() -> None:
        await fails({**swift_config, "key": "wrong"}, BackendConfigError, "authentication failed")
        missing = {**swift_config, "container": "nope", "create_containers": False}
        await fails(missing, BackendConfigError, "container 'nope' does not exist")
        down = {**swift_config, "auth_url": f"http://127.0.0.1:{free_port()}/auth/v1.0"}
        await fails(down, BackendUnavailable, "swift backend 'test'")

    asyncio.run(main())


def test_public_urls(swift_config: dict[str, Any]) -> None:
    import requests

    config = {**swift_config, "url": {"mode": "public"}}

    async def main() -> str:
        async with opened(config) as backend:
            stream = await finished(backend, b"public bytes")
            await backend.commit(stream, "dir/pub lic.txt")
            url = await backend.object_url("dir/pub lic.txt", 60)
            assert url is not None and "temp_url_sig" not in url
            return url

    url = asyncio.run(main())
    r = requests.get(url, proxies={"http": "", "https": ""}, timeout=30)
    assert r.status_code == 200 and r.content == b"public bytes"
    assert r.headers["Content-Type"] == "text/plain"


def test_catalog_lookup() -> None:
    catalog = [
        {"type": "identity", "endpoints": [{"interface": "public", "url": "http://k"}]},
        {
            "type": "object-store",
            "endpoints": [
                {"interface": "internal", "region": "R1", "url": "http://internal/v1/AUTH_p"},
                {"interface": "public", "region": "R2", "url": "http://r2/v1/AUTH_p/"},
                {"interface": "public", "region": "R1", "url": "http://r1/v1/AUTH_p"},
            ],
        },
    ]
    assert object_store_url(catalog, "public", "") == "http://r2/v1/AUTH_p"
    assert object_store_url(catalog, "public", "R1") == "http://r1/v1/AUTH_p"
    assert object_store_url(catalog, "internal", "") == "http://internal/v1/AUTH_p"
    assert object_store_url(catalog, "admin", "") is None


def test_keystone_v3(swift_target: Any, swift_config: dict[str, Any]) -> None:
    """A stand-in Keystone (password auth, project scope) whose catalog points
    at the test Swift; its tokens are tempauth tokens, which Swift accepts."""
    server = swift_target.server
    seen: list[dict[str, Any]] = []

    async def tokens(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        user = body["auth"]["identity"]["password"]["user"]
        if user["password"] != "s3cret":
            return web.json_response({"error": {"code": 401}}, status=401)
        catalog = [
            {
                "type": "object-store",
                "endpoints": [
                    {"interface": "public", "region": "RegionOne", "url": server.storage_url}
                ],
            }
        ]
        token = {"expires_at": "2999-01-01T00:00:00.000000Z", "catalog": catalog}
        return web.json_response(
            {"token": token}, status=201, headers={"X-Subject-Token": server.auth_token()}
        )

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v3/auth/tokens", tokens)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        config = {
            **swift_config,
            "auth_version": 3,
            "auth_url": f"http://127.0.0.1:{port}/v3",
            "user": "demo",
            "key": "s3cret",
            "project_name": "demo",
            "region_name": "RegionOne",
        }
        try:
            async with opened(config) as backend:
                data = os.urandom(MiB)
                stream = await finished(backend, data)
                await backend.commit(stream, "k.bin")
                assert hashlib.sha256(await read_all(backend, "k.bin")).digest() == (
                    hashlib.sha256(data).digest()
                )
                await backend.delete_object("k.bin")
            scope = seen[0]["auth"]["scope"]["project"]
            assert scope == {"name": "demo", "domain": {"name": "Default"}}
            with pytest.raises(BackendConfigError, match="Keystone"):
                async with opened({**config, "key": "wrong"}):
                    pass
        finally:
            await runner.cleanup()

    asyncio.run(main())


def test_config_is_checked() -> None:
    base = {"type": "swift", "auth_url": "http://x/auth/v1.0", "user": "a:b", "key": "k"}
    ok = SwiftConfig.model_validate(
        {**base, "container": "c", "min_segment_size": "2MiB", "url": {"ttl": "1h"}}
    )
    assert ok.min_segment_size == 2 * MiB and ok.segments == "c_segments"
    assert ok.url.ttl == 3600
    assert "**" in json.dumps(ok.model_dump(mode="json")["key"])  # never shown
    for bad in (
        {"container": "a/b"},
        {"container": "c", "min_segment_size": "8MiB", "max_segment_size": "4MiB"},
        {"container": "c", "set_temp_url_key": True},
        {"container": "c", "auth_version": 3},
        {"container": "c", "surprise": 1},
    ):
        with pytest.raises(ValueError):
            SwiftConfig.model_validate({**base, **bad})
