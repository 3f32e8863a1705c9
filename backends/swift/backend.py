"""The Swift backend (``type: swift``); the layout and ownership rules are in
the package docstring (``backends/swift/__init__.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import ClassVar
from urllib.parse import quote, unquote, urlsplit

from backends.base import (
    JSON,
    Backend,
    BackendConfig,
    BackendContext,
    Capability,
    Limits,
    ObjectInfo,
    ObjectMeta,
    StreamInfo,
    WriteResult,
)
from backends.concurrency import bounded
from backends.errors import BackendConfigError, BackendError, BackendUnavailable, NotFound
from backends.swift.client import AuthRejected, SwiftClient, etag_of
from backends.swift.config import SwiftConfig, UrlMode
from backends.swift.layout import (
    Segment,
    dump_segments,
    load_segments,
    owner_name,
    stream_of,
    stream_prefix,
)
from backends.swift.manifests import Entry, Manifests, Tree
from backends.swift.plain import (
    SHA256_HEADER,
    PlainObjects,
    content_type_for,
    load_plain,
    object_headers,
)
from backends.swift.writer import SegmentWriter
from backends.urls import key_path

_READ_CHUNK = 256 * 1024
#: names per listing page; a shorter page is the last one
_LIST_LIMIT = 10000
#: an object of at most this many segments is first written with
#: ``If-None-Match: *``: at a new key (the common case) the object it replaces
#: need not be read; at an existing key Swift refuses it (after checking each
#: segment), and the object is read and written again as before
_PUT_IF_ABSENT_SEGMENTS = 4
log = logging.getLogger(__name__)


class SwiftBackend(Backend):
    type_name: ClassVar[str] = "swift"
    config_model: ClassVar[type[BackendConfig]] = SwiftConfig
    #: OBJECT_URLS: ``object_url`` answers None in ``url.mode: gateway``
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.OBJECT_EXPIRY})

    def __init__(self, name: str, config: BackendConfig, context: BackendContext) -> None:
        super().__init__(name, config, context)
        assert isinstance(config, SwiftConfig)
        self.cfg = config
        self.container = config.container
        self.segments = config.segments
        self.client = SwiftClient(config, self.telemetry)
        self.manifests = Manifests(self.client, self.segments)
        self.writer = SegmentWriter(self.client, self.segments)
        self.plain = PlainObjects(
            self.client, self.container, self.manifests, context.budget, config.plain_object_size
        )
        self._temp_url_key = config.temp_url_key.get_secret_value() if config.temp_url_key else ""

    @property
    def limits(self) -> Limits:
        # SLO segments may be any size; nesting lifts the count limit. A small
        # object written whole is one plain PUT, If-None-Match: * if asked
        return Limits(create_if_absent=self.plain.limit)

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.client.close()
            raise

    async def _start(self) -> None:
        where = f"swift backend {self.name!r}"
        try:
            await self.client.credentials()
        except AuthRejected as exc:
            raise BackendConfigError(f"{where}: authentication failed: {exc}") from exc
        except BackendUnavailable as exc:
            exc.args = (f"{where}: {exc}",)
            raise
        for container in (self.container, self.segments):
            await self._check_container(container, where)
        slo = (await self.client.cluster_info()).get("slo", {})
        cluster_limit = slo.get("max_manifest_segments") if isinstance(slo, dict) else None
        if isinstance(cluster_limit, int) and 2 <= cluster_limit < self.manifests.limit:
            log.info("%s: the cluster allows %d entries per manifest", where, cluster_limit)
            self.manifests.limit = cluster_limit
        if self.cfg.set_temp_url_key:
            reply = await self.client.call(
                "POST", headers={"X-Account-Meta-Temp-URL-Key": self._temp_url_key}, ok=(403,)
            )
            if reply.status == 403:
                raise BackendConfigError(
                    f"{where}: not allowed to set the account's Temp-URL-Key "
                    "(needs an account admin); set it once by hand and drop set_temp_url_key"
                )
        elif self.cfg.url.mode is UrlMode.TEMPURL and not self._temp_url_key:
            reply = await self.client.call("HEAD")
            self._temp_url_key = reply.headers.get("X-Account-Meta-Temp-Url-Key", "")
            if not self._temp_url_key:
                raise BackendConfigError(
                    f"{where}: url.mode tempurl needs temp_url_key (the account has no "
                    "Temp-URL-Key; set one, or set_temp_url_key: true)"
                )

    async def _check_container(self, container: str, where: str) -> None:
        reply = await self.client.call("HEAD", container, ok=(403, 404))
        if reply.status == 403:
            raise BackendConfigError(f"{where}: no access to container {container!r} (403)")
        if reply.status != 404:
            return
        if not self.cfg.create_containers:
            raise BackendConfigError(
                f"{where}: container {container!r} does not exist; create it "
                "or set create_containers: true"
            )
        headers = {}
        if self.cfg.url.mode is UrlMode.PUBLIC:  # SLO reads segments as the reader
            headers["X-Container-Read"] = ".r:*"
        reply = await self.client.call("PUT", container, headers=headers, ok=(403,))
        if reply.status == 403:
            raise BackendConfigError(f"{where}: not allowed to create container {container!r}")

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        await self.client.call("HEAD")

    # -- streams ---------------------------------------------------------------
    async def create_stream(self, stream: StreamInfo) -> JSON:
        return dump_segments([])  # segments appear with the first bytes

    async def write(self, stream: StreamInfo, body: AsyncIterator[bytes]) -> WriteResult:
        if self.plain.fits(stream):
            return await self.plain.write(stream, body, self.writer.write, self._drop_old)
        if stream.if_absent:
            raise BackendError("this write cannot make its object only where there is none")
        return await self.writer.write(stream, body)

    async def _drop_old(self, old: Tree) -> None:
        """What an object replaced by a plain one referenced."""
        await self._drop_replaced(old, set(), set())

    async def finish_stream(self, stream: StreamInfo) -> JSON:
        if load_plain(stream.state, stream.offset) is None:
            load_segments(stream.state, stream.offset)  # sealed as it is: a short tail is fine
        return stream.state

    async def commit(
        self, stream: StreamInfo, key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        plain = load_plain(stream.state, stream.offset)
        if plain is not None:  # the write made it
            info = await self.plain.commit(plain, key, meta)
            referenced: set[str] = set()
            if stream.one_write:  # no earlier write: nothing of one to look for
                return info
        else:
            segments = load_segments(stream.state, stream.offset)
            info, referenced = await self._make_object(key, [(stream, segments)], meta)
        # pieces of writes that were never committed (a crash, a failed segment)
        prefix = stream_prefix(stream.id)
        leftovers = set(await self._list(prefix)) - referenced - {owner_name(stream.id)}
        await self._delete_names(leftovers)
        return info

    async def assemble(
        self, streams: Sequence[StreamInfo], key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        parts: list[tuple[StreamInfo, list[Segment]]] = []
        copies: dict[str, tuple[StreamInfo, list[Segment]]] = {}
        async with self._copies_dropped_on_failure(key) as copying:
            for stream in streams:  # a stream listed twice is referenced twice, copied once
                segments = load_segments(stream.state, stream.offset)
                if stream.id in copies:
                    parts.append(copies[stream.id])
                elif await self._owned_elsewhere(stream, segments, key):
                    copy = self._copy_stream(stream, key)
                    copying.append(stream_prefix(copy.id))
                    copies[stream.id] = await self._copy_for(copy, segments)
                    parts.append(copies[stream.id])
                else:
                    parts.append((stream, segments))
            info, _ = await self._make_object(key, parts, meta)
        return info

    async def _owned_elsewhere(self, stream: StreamInfo, segments: list[Segment], key: str) -> bool:
        """Does another object's manifest reference the stream's segments?
        Referencing them too would let either object's deletion break the other."""
        if not segments:
            return False
        for owner in await self._owners(stream):
            if owner == key:
                continue
            tree = await self.manifests.tree(self.container, owner)
            if tree is not None and segments[0].name in tree.names:
                return True
        return False

    @staticmethod
    def _copy_stream(stream: StreamInfo, key: str) -> StreamInfo:
        """The stream holding copies of ``stream``'s segments for the object
        ``key`` (a tus partial in a second final): named after both, owned by
        ``key`` like any other."""
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return replace(stream, id=f"{stream.id}-for-{digest}", key=None)

    async def _copy_for(
        self, copy: StreamInfo, segments: list[Segment]
    ) -> tuple[StreamInfo, list[Segment]]:
        """Server-side copies of ``segments`` into the stream ``copy``; no
        byte passes the gateway."""

        async def one(segment: Segment) -> Segment:
            name = stream_prefix(copy.id) + segment.name.rpartition("/")[2]
            source = f"/{key_path(self.segments)}/{key_path(segment.name)}"
            await self.client.call(
                "PUT", self.segments, name, data=b"", headers={"X-Copy-From": source}
            )
            return Segment(name, segment.size, segment.etag)

        return copy, await bounded(segments, one, self.cfg.concurrency)

    @contextlib.asynccontextmanager
    async def _copies_dropped_on_failure(self, key: str) -> AsyncIterator[list[str]]:
        """The prefixes of the copies an assembly into ``key`` begins (the
        caller appends them); dropped if the assembly fails."""
        copying: list[str] = []
        try:
            yield copying
        except BaseException:
            if copying:
                await asyncio.shield(self._drop_copies(key, copying))
            raise

    async def _drop_copies(self, key: str, prefixes: list[str]) -> None:
        """An assembly failed (a copy, the manifest): delete the copies it made
        (their segments, marker, sub-manifests) unless the object at ``key``
        was written and references them (a later step failed)."""
        try:
            tree = await self.manifests.tree(self.container, key)
            names = {n for p in prefixes for n in await self._list(p)}
            if tree is not None and names & tree.names:
                return
            await self._delete_names(names)
            log.info("%s: dropped %d copied pieces of a failed assembly", key, len(names))
        except Exception as exc:  # the assembly's own error is what the caller hears
            log.warning("%s: copies of a failed assembly left behind (%s)", key, exc)

    async def _make_object(
        self, key: str, parts: list[tuple[StreamInfo, list[Segment]]], meta: ObjectMeta | None
    ) -> tuple[ObjectInfo, set[str]]:
        """Write new (markers, sub-manifests, manifest), then delete what the
        replaced object referenced and the new one does not. A stream whose own
        key is ``key`` gets no marker: that key names its owner already."""
        content_type = content_type_for(key, meta.content_type if meta else None)
        # on the manifest: no bytes move
        headers = object_headers(content_type, *_lifetime_and_digest(meta))
        size = sum(s.size for _, segs in parts for s in segs)
        owners = {stream_prefix(s.id): s for s, segs in parts if segs}
        marked = [s for s in owners.values() if s.key != key]
        segments = [seg for _, segs in parts for seg in segs]
        # short: no sub-manifests (which would overwrite those of an old object
        # made of the same stream before it is read), and cheap to refuse
        if_absent = len(segments) <= min(_PUT_IF_ABSENT_SEGMENTS, self.manifests.limit)
        old = None if if_absent else await self.manifests.tree(self.container, key)
        referenced: set[str] = set()
        top: list[Entry] = []
        if segments:
            body = key.encode()
            await bounded(
                marked,
                lambda s: self.client.call("PUT", self.segments, owner_name(s.id), data=body),
                self.cfg.concurrency,
            )
            first = next(iter(owners.values()))
            top, written = await self.manifests.nest(segments, first.id)
            referenced = {s.name for s in segments} | written
        etag = await self._put_object(key, top, content_type, headers, if_absent)
        if etag is None:  # the key holds an object: read what it references first
            old = await self.manifests.tree(self.container, key)
            etag = await self._put_object(key, top, content_type, headers, False)
        if segments and "X-Delete-At" in headers:  # the pieces expire with the manifest
            markers = {owner_name(s.id) for s in marked}
            await self._expire_names(referenced | markers, headers["X-Delete-At"])
        if old is not None and old.slo:
            await self._drop_replaced(old, referenced, set(owners))
        return ObjectInfo(key=key, size=size, content_type=content_type, etag=etag), referenced

    async def _put_object(
        self,
        key: str,
        top: list[Entry],
        content_type: str,
        headers: dict[str, str],
        if_absent: bool,
    ) -> str | None:
        """The manifest over ``top`` (an empty plain object if there is nothing);
        its ETag, or None if ``if_absent`` and the key holds an object."""
        if not top:
            extra = {"If-None-Match": "*"} if if_absent else {}
            reply = await self.client.call(
                "PUT",
                self.container,
                key,
                data=b"",
                headers={**headers, **extra},
                ok=(412,) if if_absent else (),
            )
            return None if reply.status == 412 else etag_of(reply.headers)
        return await self.manifests.put(
            self.container, key, top, content_type, headers, if_absent=if_absent
        )

    async def _drop_replaced(self, old: Tree, referenced: set[str], owners: set[str]) -> None:
        gone = old.names - referenced
        markers = {stream_of(n) + "owner" for n in old.names} - {p + "owner" for p in owners}
        await self._delete_names(gone)
        await self._delete_names(markers)

    async def copy_object(
        self, source: str, key: str, meta: ObjectMeta | None = None
    ) -> ObjectInfo:
        """A manifest's segments are copied server-side (``X-Copy-From``, a
        few at a time, no byte through the gateway) into streams of their own
        owned by ``key``, as an assembly copies a partial owned elsewhere; a
        plain object is copied whole. The copy shares no piece with the
        source, so deleting either never breaks the other."""
        leaves = await self.manifests.leaves(self.container, source)
        if leaves is None:
            raise NotFound(source)
        if not leaves:
            return await self._copy_plain(source, key, meta)
        by_stream: dict[str, list[Segment]] = {}
        for leaf in leaves:
            by_stream.setdefault(stream_of(leaf.name), []).append(
                Segment(leaf.name, leaf.size, leaf.etag)
            )
        copied: dict[str, tuple[StreamInfo, Segment]] = {}
        async with self._copies_dropped_on_failure(key) as copying:
            for prefix, segments in by_stream.items():
                origin = StreamInfo(id=prefix.rstrip("/"), key=None, length=None, offset=0)
                copy = self._copy_stream(origin, key)
                copying.append(stream_prefix(copy.id))
                unique = list({s.name: s for s in segments}.values())
                _, made = await self._copy_for(copy, unique)
                copied.update({s.name: (copy, m) for s, m in zip(unique, made, strict=True)})
            parts: list[tuple[StreamInfo, list[Segment]]] = []
            for leaf in leaves:  # runs of one copy stream, in the source's order
                stream, segment = copied[leaf.name]
                if parts and parts[-1][0] is stream:
                    parts[-1][1].append(segment)
                else:
                    parts.append((stream, [segment]))
            info, _ = await self._make_object(key, parts, meta)
        return info

    async def _copy_plain(self, source: str, key: str, meta: ObjectMeta | None) -> ObjectInfo:
        """Swift's server-side COPY of a plain object (up to ``max_file_size``)."""
        content_type = content_type_for(key, meta.content_type if meta else None)
        headers = {
            "X-Copy-From": f"/{key_path(self.container)}/{key_path(source)}",
            "X-Fresh-Metadata": "true",  # the new object's type and lifetime, not the source's
            **object_headers(content_type, *_lifetime_and_digest(meta)),
        }
        old = await self.manifests.tree(self.container, key)
        reply = await self.client.call(
            "PUT", self.container, key, data=b"", headers=headers, ok=(404,)
        )
        if reply.status == 404:
            raise NotFound(source)
        if old is not None and old.slo:
            await self._drop_replaced(old, set(), set())
        info = await self.stat(key)
        if info is None:
            raise NotFound(key)
        return info

    async def discard_stream(self, stream: StreamInfo) -> None:
        prefix = stream_prefix(stream.id)
        names = set(await self._list(prefix))
        if load_plain(stream.state, stream.offset) is not None:
            # its object is the committed one: only a crashed write's segments go
            await self._delete_names(names - {owner_name(stream.id)})
            return
        names |= {s.name for s in load_segments(stream.state, stream.offset)}
        keep: set[str] = set()
        marker_owner = await self._owner(stream.id)
        marker_protects = False
        for owner in {k for k in (marker_owner, stream.key) if k is not None}:
            tree = await self.manifests.tree(self.container, owner)
            used = {n for n in tree.names if n.startswith(prefix)} if tree is not None else set()
            keep |= used
            marker_protects = marker_protects or (bool(used) and owner == marker_owner)
        marker = owner_name(stream.id)
        await self._delete_names(names - keep - {marker})
        if not marker_protects:
            await self._delete_names({marker})

    async def _owners(self, stream: StreamInfo) -> set[str]:
        """The keys of the objects that may reference the stream: its marker's,
        and its own key (an object committed there has no marker)."""
        owner = await self._owner(stream.id)
        return {k for k in (owner, stream.key) if k is not None}

    async def _owner(self, stream_id: str) -> str | None:
        reply = await self.client.call("GET", self.segments, owner_name(stream_id), ok=(404,))
        return None if reply.status == 404 else reply.body.decode()

    async def read_stream(
        self, stream: StreamInfo, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        stop = stream.offset if end is None else min(end, stream.offset)
        plain = load_plain(stream.state, stream.offset)
        if plain is not None:
            if start < stop:
                async for chunk in self._get(self.container, plain.key, start, stop):
                    yield chunk
            return
        position = 0
        for seg in load_segments(stream.state, stream.offset):
            first, position = position, position + seg.size
            if position <= start:
                continue
            if first >= stop:
                break
            lo, hi = max(start, first) - first, min(stop, position) - first
            async for chunk in self._get(self.segments, seg.name, lo, hi):
                yield chunk

    # -- objects ---------------------------------------------------------------
    async def stat(self, key: str) -> ObjectInfo | None:
        reply = await self.client.call("HEAD", self.container, key, ok=(404,))
        if reply.status == 404:
            return None
        return ObjectInfo(
            key=key,
            size=int(reply.headers.get("Content-Length", "0")),
            content_type=reply.headers.get("Content-Type"),
            etag=etag_of(reply.headers) or None,
            version=reply.headers.get("X-Timestamp"),
            sha256=reply.headers.get(SHA256_HEADER),
        )

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if end is not None and end <= start:
            if await self.stat(key) is None:
                raise NotFound(key)
            return
        async for chunk in self._get(self.container, key, start, end):
            yield chunk

    async def _get(
        self, container: str, name: str, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        headers = {}
        if start > 0 or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        async with self.client.request("GET", container, name, headers=headers) as resp:
            if resp.status == 404:
                raise NotFound(f"{container}/{name}")
            if resp.status == 416:
                return
            if resp.status not in (200, 206):
                raise self.client.unavailable(f"GET {container}/{name} answered {resp.status}")
            async for chunk in resp.content.iter_chunked(_READ_CHUNK):
                yield chunk

    async def delete_object(self, key: str) -> None:
        tree = await self.manifests.tree(self.container, key)
        if tree is None:
            return
        if not tree.slo:
            await self.client.call("DELETE", self.container, key, ok=(404,))
            return
        reply = await self.client.call(
            "DELETE",
            self.container,
            key,
            query={"multipart-manifest": "delete"},
            headers={"Accept": "application/json"},
            ok=(404,),
        )
        if reply.status != 404:
            result = json.loads(reply.body or b"{}")
            errors = [e for e in result.get("Errors", []) if "404" not in str(e)]
            if errors:
                raise self.client.unavailable(f"deleting {key} left pieces behind: {errors}")
        await self._delete_names({stream_of(n) + "owner" for n in tree.names})

    async def object_url(self, key: str, ttl: int, inline: bool = False) -> str | None:
        mode = self.cfg.url.mode
        if mode is UrlMode.GATEWAY:
            return None
        try:
            creds = await self.client.credentials()
        except AuthRejected as exc:
            raise self.client.unavailable(f"re-authentication failed: {exc}") from exc
        base = self.cfg.url.base_url or creds.storage_url
        url = f"{base}/{quote(self.container, safe='')}/{key_path(key)}"
        if mode is UrlMode.PUBLIC:
            return url
        expires = int(time.time() + (self.cfg.url.ttl or ttl))
        path = f"{unquote(urlsplit(creds.storage_url).path)}/{self.container}/{key}"
        message = f"GET\n{expires}\n{path}".encode()
        sig = hmac.new(self._temp_url_key.encode(), message, hashlib.sha256).hexdigest()
        # tempurl answers a GET as an attachment named after the object unless
        # asked for ``inline`` (not signed: only inline-safe types are offered it)
        shown = "&inline" if inline else ""
        return f"{url}?temp_url_sig={sig}&temp_url_expires={expires}{shown}"

    # -- helpers ---------------------------------------------------------------
    async def _list(self, prefix: str) -> list[str]:
        """Names in the segments container under ``prefix`` (all pages)."""
        names: list[str] = []
        marker = ""
        while True:
            query = {"prefix": prefix, "format": "json", "limit": str(_LIST_LIMIT)}
            if marker:
                query["marker"] = marker
            reply = await self.client.call("GET", self.segments, query=query, ok=(404,))
            page = [] if reply.status in (204, 404) else reply.json()
            if not page:
                return names
            names.extend(str(item["name"]) for item in page)
            if len(page) < _LIST_LIMIT:
                return names
            marker = names[-1]

    async def _expire_names(self, names: set[str], delete_at: str) -> None:
        """Give pieces in the segments container the object's ``X-Delete-At``."""

        async def expire(name: str) -> None:
            headers = {"X-Delete-At": delete_at}
            await self.client.call("POST", self.segments, name, headers=headers)

        await bounded(sorted(names), expire, self.cfg.concurrency)

    async def _delete_names(self, names: set[str]) -> None:
        async def delete(name: str) -> None:
            await self.client.call("DELETE", self.segments, name, ok=(404, 409))

        await bounded(sorted(names), delete, self.cfg.concurrency)


def _lifetime_and_digest(meta: ObjectMeta | None) -> tuple[int | None, str | None]:
    if meta is None:
        return None, None
    return meta.delete_at, meta.sha256
