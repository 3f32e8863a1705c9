"""Static Large Object manifests: writing them (nested past the per-manifest
limit) and reading back every piece an object references."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from backends.concurrency import bounded
from backends.errors import BackendUnavailable, InvalidState, NotFound
from backends.swift.client import SwiftClient, etag_of
from backends.swift.layout import Segment, submanifest_name


@dataclass(frozen=True)
class Entry:
    """One line of a manifest: a segment or a sub-manifest in ``container``."""

    name: str
    etag: str
    size: int

    def manifest_line(self, container: str) -> dict[str, Any]:
        return {"path": f"/{container}/{self.name}", "etag": self.etag, "size_bytes": self.size}


@dataclass
class Tree:
    """What an object at a key is made of, as far as the segments container goes."""

    slo: bool
    #: segments and sub-manifests (names in the segments container)
    names: set[str] = field(default_factory=set)


class Manifests:
    def __init__(self, client: SwiftClient, segments_container: str) -> None:
        self.client = client
        self.segments = segments_container
        self.cfg = client.cfg
        #: entries per manifest: the configured limit, lowered to the cluster's
        self.limit = client.cfg.max_manifest_segments

    async def put(
        self,
        container: str,
        name: str,
        entries: list[Entry],
        content_type: str,
        headers: dict[str, str] | None = None,
        *,
        if_absent: bool = False,
    ) -> str | None:
        """PUT one manifest (with extra ``headers``); its ETag, or None if
        ``if_absent`` and ``container/name`` exists (``If-None-Match: *``). Swift
        checks every entry exists with that size and ETag: a missing one is
        ``NotFound``, other refusals ``InvalidState``."""
        body = json.dumps([e.manifest_line(self.segments) for e in entries]).encode()
        extra = {"If-None-Match": "*"} if if_absent else {}
        reply = await self.client.call(
            "PUT",
            container,
            name,
            query={"multipart-manifest": "put"},
            headers={"Content-Type": content_type, **(headers or {}), **extra},
            data=body,
            timeout=self.cfg.manifest_timeout,
            ok=(400, 404, 409, 412),
        )
        if reply.status == 201:
            return etag_of(reply.headers)
        if reply.status == 412 and if_absent:
            return None
        text = reply.body.decode(errors="replace")[:500]
        if reply.status == 404 or "404 Not Found" in text:
            raise NotFound(f"segments of {container}/{name} are missing: {text}")
        raise InvalidState(f"swift refused the manifest {container}/{name}: {text}")

    async def nest(
        self, segments: list[Segment], owner_stream: str
    ) -> tuple[list[Entry], set[str]]:
        """Top-level entries for ``segments`` plus the sub-manifests written to
        get there: groups of ``max_manifest_segments`` become sub-manifests under
        ``owner_stream``'s prefix, level by level, until one manifest suffices."""
        entries = [Entry(s.name, s.etag, s.size) for s in segments]
        limit = self.limit
        written: set[str] = set()
        level = 0
        while len(entries) > limit:
            groups = [entries[i : i + limit] for i in range(0, len(entries), limit)]

            async def group(item: tuple[int, list[Entry]], level: int = level) -> Entry:
                index, members = item
                if len(members) == 1:
                    return members[0]
                name = submanifest_name(owner_stream, level, index)
                etag = await self.put(self.segments, name, members, "application/octet-stream")
                assert etag is not None
                return Entry(name, etag, sum(m.size for m in members))

            entries = await bounded(enumerate(groups), group, self.cfg.concurrency)
            written |= {e.name for e in entries} - {s.name for s in segments}
            level += 1
        return entries, written

    async def _lines(self, container: str, name: str) -> list[dict[str, Any]] | None:
        """The manifest lines of ``container/name`` ([] for a plain object,
        whose body is left unread), or None if it does not exist."""
        async with self.client.request(
            "GET", container, name, query={"multipart-manifest": "get"}
        ) as resp:
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise self.client.unavailable(f"GET {container}/{name} manifest: {resp.status}")
            if resp.headers.get("X-Static-Large-Object", "").lower() != "true":
                return []
            try:
                lines = json.loads(await resp.read())
            except (ValueError, aiohttp.ClientError) as exc:
                raise BackendUnavailable(f"swift: unreadable manifest {container}/{name}") from exc
        return lines if isinstance(lines, list) and lines else []

    async def leaves(self, container: str, name: str) -> list[Entry] | None:
        """The segments ``container/name`` is made of, in order, through its
        sub-manifests ([] for a plain object; None if it does not exist).
        ``InvalidState`` if it references pieces outside the segments container."""
        lines = await self._lines(container, name)
        if lines is None:
            return None
        prefix = f"/{self.segments}/"
        pieces: list[tuple[Entry, bool]] = []
        for line in lines:
            path = str(line.get("name", ""))
            if not path.startswith(prefix):
                raise InvalidState(f"{container}/{name} references {path!r}, not a segment")
            entry = Entry(path[len(prefix) :], str(line.get("hash", "")), int(line["bytes"]))
            pieces.append((entry, bool(line.get("sub_slo"))))

        async def expand(piece: tuple[Entry, bool]) -> list[Entry]:
            entry, sub = piece
            if not sub:
                return [entry]
            found = await self.leaves(self.segments, entry.name)
            if not found:
                raise InvalidState(f"sub-manifest {entry.name} of {container}/{name} is gone")
            return found

        expanded = await bounded(pieces, expand, self.cfg.concurrency)
        return [leaf for group in expanded for leaf in group]

    async def tree(self, container: str, name: str) -> Tree | None:
        """What ``container/name`` references in the segments container (through
        sub-manifests), or None if it does not exist."""
        lines = await self._lines(container, name)
        if lines is None:
            return None
        if not lines:
            return Tree(slo=False)
        tree = Tree(slo=True)
        subs: list[str] = []
        prefix = f"/{self.segments}/"
        for line in lines:
            path = str(line.get("name", ""))
            if not path.startswith(prefix):
                continue  # not ours
            piece = path[len(prefix) :]
            tree.names.add(piece)
            if line.get("sub_slo"):
                subs.append(piece)
        for sub in await bounded(subs, lambda n: self.tree(self.segments, n), self.cfg.concurrency):
            if sub is not None:
                tree.names |= sub.names
        return tree
