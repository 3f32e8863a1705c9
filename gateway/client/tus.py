"""tus 1.0 client: creation, HEAD/PATCH with resume, and ``--parallel`` as
partial uploads joined by the ``concatenation`` extension.

Only the public protocol is used, so any tus server works; the file URL is
this gateway's ``X-Object-Url`` when the server sends it, else the upload URL
(which tus servers serve with GET)."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

import aiohttp

from .body import file_range
from .files import LocalFile
from .progress import FileProgress
from .retry import Gone, Transient, UploadError, describe, retrying, status_error
from .session import Context, PartProgress, Result, all_of

TUS = {"Tus-Resumable": "1.0.0"}
#: the extension that lets a creation declaring the file's SHA-256 complete at once
INSTANT_UPLOAD = "instant-upload"
#: no partial smaller than this (each costs requests and, on S3, a part)
MIN_PARTIAL = 1024 * 1024
_RETRIED = (Transient, aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


class _Conflict(Exception):
    """409: the server's offset is not ours; ask it again."""


def encode_metadata(metadata: Mapping[str, str]) -> str:
    return ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in metadata.items()
    )


def split(size: int, parallel: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges for ``parallel`` partial uploads."""
    n = max(1, min(parallel, size // MIN_PARTIAL))
    bounds = [size * i // n for i in range(n + 1)]
    return list(itertools.pairwise(bounds))


class TusClient:
    NAME = "tus"
    #: headers on every request
    PROTOCOL_HEADERS: Mapping[str, str] = TUS
    #: statuses of a successful PATCH
    APPEND_OK: tuple[int, ...] = (204,)
    NO_CONCAT = "the server does not offer tus concatenation: uploading each file as one stream"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.endpoint = ctx.settings.endpoint
        self._extensions: set[str] | None = None
        self._warned = False

    def _headers(self, **extra: str) -> dict[str, str]:
        headers = dict(self.PROTOCOL_HEADERS)
        if self.ctx.settings.authorization:
            headers["Authorization"] = self.ctx.settings.authorization
        headers.update(extra)
        return headers

    async def extensions(self, name: str) -> set[str]:
        if self._extensions is None:

            async def options() -> set[str]:
                async with self.ctx.http.options(self.endpoint, headers=self._headers()) as r:
                    if r.status >= 500:
                        raise status_error(r.status, r.reason or "", await r.text(), "OPTIONS")
                    raw = r.headers.get("Tus-Extension", "")
                    return {e.strip() for e in raw.split(",") if e.strip()}

            self._extensions = await retrying(
                options, self.ctx.settings.backoff, self.ctx.retry_note(name)
            )
        return self._extensions

    async def upload(self, file: LocalFile, progress: FileProgress) -> Result:
        s = self.ctx.settings
        ranges = split(file.size, s.parallel)
        if len(ranges) > 1 and "concatenation" not in await self.extensions(file.name):
            if not self._warned:
                self.ctx.reporter.message(self.NO_CONCAT)
                self._warned = True
            ranges = [(0, file.size)]
        fingerprint = file.fingerprint(self.NAME, self.endpoint, len(ranges), file.name, s.metadata)
        try:
            return await self._upload(file, progress, fingerprint, ranges)
        except Gone as exc:
            # a stored upload vanished between our HEAD and the end: start over once
            self.ctx.forget(fingerprint)
            self.ctx.reporter.message(f"{file.name}: {exc}; starting a new upload")
            progress.set(0)
            return await self._upload(file, progress, fingerprint, ranges)

    async def _upload(
        self, file: LocalFile, progress: FileProgress, fp: str, ranges: list[tuple[int, int]]
    ) -> Result:
        entry: dict[str, Any] = self.ctx.recall(fp) or {}
        parts: list[str | None] = list(entry.get("parts") or [None] * len(ranges))
        if len(parts) != len(ranges):
            parts = [None] * len(ranges)
        final = entry.get("final") if len(ranges) > 1 else None
        resumed = 0
        instant = False

        def save() -> None:
            self.ctx.remember(fp, {"name": file.name, "parts": parts, "final": final})

        async def send(i: int, start: int, end: int) -> Mapping[str, str]:
            nonlocal resumed, instant
            partial = len(ranges) > 1
            url = parts[i]
            known = None
            if url is not None:
                try:
                    known = await self._head(url, file.name)
                except Gone as exc:
                    self.ctx.reporter.message(f"{file.name}: {exc}; starting a new upload")
                    url = None
            if url is None:
                digest = None
                if not partial and INSTANT_UPLOAD in await self.extensions(file.name):
                    # hash first: the server may hold these bytes already
                    digest = await asyncio.to_thread(file.sha256)
                url, known = await self._create(file, end - start, partial, digest)
                parts[i] = url
                save()
                instant = known[0] == end - start > 0
            assert known is not None
            if not instant:
                resumed += known[0]
            return await self._send(url, file, start, end - start, known, PartProgress(progress))

        if final is not None:
            try:
                offset, headers = await self._head(final, file.name)
                if offset == file.size:
                    progress.set(file.size)
                    self.ctx.forget(fp)
                    return self._result(file, final, headers, file.size)
            except Gone:
                final = None
        sent = await all_of([send(i, a, b) for i, (a, b) in enumerate(ranges)])
        if len(ranges) == 1:
            url = parts[0]
            assert url is not None
            headers = sent[0]
        else:
            final = url = await self._concat(file, [p for p in parts if p])
            save()
            _, headers = await self._head(url, file.name)
        self.ctx.forget(fp)
        return self._result(file, url, headers, resumed, instant)

    def _result(
        self,
        file: LocalFile,
        url: str,
        headers: Mapping[str, str],
        resumed: int,
        instant: bool = False,
    ) -> Result:
        return Result(
            file=file,
            url=headers.get("X-Object-Url") or url,
            upload=url,
            key=None,
            resumed_from=resumed,
            instant=instant,
        )

    async def _create(
        self, file: LocalFile, length: int, partial: bool, digest: bytes | None = None
    ) -> tuple[str, tuple[int, Mapping[str, str]]]:
        """A new upload's URL and what the server holds of it (its offset,
        the answer's headers: all of it after an instant upload)."""
        s = self.ctx.settings
        headers = self._headers(**{"Upload-Length": str(length)})
        if partial:
            headers["Upload-Concat"] = "partial"
        else:
            metadata = {"filename": file.name, "filetype": file.content_type, **s.metadata}
            headers["Upload-Metadata"] = encode_metadata(metadata)
        if digest is not None:  # RFC 9530: the whole file's digest, checked by the server
            headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(digest).decode()}:"
        url, answer = await self._post(headers, file.name, "create")
        offset = answer.get("Upload-Offset", "0")
        if offset.isdigit() and int(offset) == length:
            return url, (length, answer)
        return url, (0, {})

    async def _concat(self, file: LocalFile, urls: list[str]) -> str:
        metadata = {
            "filename": file.name,
            "filetype": file.content_type,
            **self.ctx.settings.metadata,
        }
        headers = self._headers(
            **{
                "Upload-Concat": "final;" + " ".join(urls),
                "Upload-Metadata": encode_metadata(metadata),
            }
        )
        url, _ = await self._post(headers, file.name, "concatenate")
        return url

    async def _post(
        self, headers: dict[str, str], name: str, what: str
    ) -> tuple[str, Mapping[str, str]]:
        async def post() -> tuple[str, Mapping[str, str]]:
            async with self.ctx.http.post(self.endpoint, headers=headers) as r:
                if r.status != 201 or "Location" not in r.headers:
                    raise status_error(r.status, r.reason or "", await r.text(), f"{name}: {what}")
                return urljoin(self.endpoint, r.headers["Location"]), r.headers.copy()

        return await retrying(post, self.ctx.settings.backoff, self.ctx.retry_note(name))

    async def _head(self, url: str, name: str) -> tuple[int, Mapping[str, str]]:
        async def head() -> tuple[int, Mapping[str, str]]:
            async with self.ctx.http.head(url, headers=self._headers()) as r:
                if r.status in (404, 410):
                    raise Gone(f"upload {url} is gone (HTTP {r.status})")
                if r.status not in (200, 204) or "Upload-Offset" not in r.headers:
                    raise status_error(r.status, r.reason or "", "", f"{name}: HEAD")
                return int(r.headers["Upload-Offset"]), r.headers.copy()

        return await retrying(head, self.ctx.settings.backoff, self.ctx.retry_note(name))

    async def _send(
        self,
        url: str,
        file: LocalFile,
        base: int,
        length: int,
        known: tuple[int, Mapping[str, str]],
        progress: PartProgress,
    ) -> Mapping[str, str]:
        """PATCH bytes ``[base + offset, base + length)`` until the server
        has them all; after a failure, ask its offset and go on from there."""
        offset, headers = known
        progress.set(offset)
        backoff = self.ctx.settings.backoff
        failures = 0
        while offset < length:
            try:
                offset, headers = await self._patch(url, file, base, offset, length, progress)
                failures = 0
            except _Conflict:
                offset, headers = await self._head(url, file.name)
            except _RETRIED as exc:
                if failures + 1 >= backoff.attempts:
                    raise UploadError(f"{file.name}: gave up: {describe(exc)}") from exc
                delay = backoff.delay(failures)
                failures += 1
                self.ctx.retry_note(file.name)(describe(exc), delay)
                await asyncio.sleep(delay)
                offset, headers = await self._head(url, file.name)
            progress.set(offset)
        if not headers:  # nothing to send (an empty file or part): ask for the URL headers
            _, headers = await self._head(url, file.name)
        return headers

    def _append_headers(self, offset: int, stop: int, length: int) -> dict[str, str]:
        return {
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(stop - offset),
        }

    async def _patch(
        self, url: str, file: LocalFile, base: int, offset: int, length: int, progress: PartProgress
    ) -> tuple[int, Mapping[str, str]]:
        chunk = self.ctx.settings.chunk_size
        stop = min(length, offset + chunk) if chunk else length
        headers = self._headers(**self._append_headers(offset, stop, length))
        body = file_range(
            file.path, base + offset, base + stop, self.ctx.settings.limit, progress.advance
        )
        async with self.ctx.http.patch(url, data=body, headers=headers) as r:
            if r.status in self.APPEND_OK and "Upload-Offset" in r.headers:
                return int(r.headers["Upload-Offset"]), r.headers.copy()
            text = await r.text()
            if r.status in (404, 410):
                raise Gone(f"upload {url} is gone (HTTP {r.status})")
            if r.status == 409:
                raise _Conflict()
            raise status_error(r.status, r.reason or "", text, f"{file.name}: PATCH")
