"""What an S3 store really does, found out at start-up instead of assumed.

S3 stores in the field differ where it hurts most: Swift 2.30's s3api
refuses CompleteMultipartUpload with part checksums (``MalformedXML``), Ceph
RGW 16 refuses aws-chunked trailers and *accepts wrong CRC32 values*
everywhere, Swift's s3api stops at 1,000 parts. A ``probe`` makes a few
requests on temporary keys under ``temp_prefix``, side by side: three round
trips after each other (create, send, complete), and the clean-up afterwards
runs in the background (``Probe.cleaned``) rather than delay start-up:

* PutObject with a right and with a wrong ``x-amz-checksum-crc32``, and with a
  wrong ``Content-MD5``: is each checksum really checked?
* multipart uploads declaring CRC32: a part with the right CRC32 in a header,
  completed with the checksum listed (the part with the right CRC32 in an
  aws-chunked trailer, on an upload of its own, if the header is refused);
  beside them, on an upload that is aborted, a part with a wrong CRC32 in a
  trailer and an UploadPartCopy;
* UploadPart numbers 1, 2, ``max_parts`` and 1,000 (Swift s3api's limit) at
  once, on an upload then completed from parts 1 and 2 alone: does the store
  make an object from some of an upload's parts? Ceph RGW (16 and later)
  counts the listed parts first (``InvalidPart`` unless every part is
  listed); a store that takes a subset goes on to the sizes and refuses the
  1-byte part 1 that is not the last (``EntityTooSmall``: moto, MinIO, AWS,
  Swift 2.30 and 2.38). Nothing is completed either way: an accepted subset
  would leave the parts left out behind, and Swift's s3api keeps them as
  segments no S3 request reaches (1 byte per start). Only a store that takes
  1-byte parts makes the object (the answer is then plain).
* PutObject with ``If-None-Match: *`` on a free key (taken), then on the
  probe object: refused (``PreconditionFailed``), the store can make an
  object only where none is (``Limits.create_if_absent``); taken (it
  replaced it) or refused otherwise, it cannot;
* the same for CompleteMultipartUpload (a 1-byte part, completed with
  ``If-None-Match: *`` on a free key, then on the probe object): an object
  in parts made only where none is (``Limits.complete_if_absent``);
* a presigned GET of the probe object, when URLs are presigned;
* a part of ``min_part_size`` bytes and a last one, when that is set below
  S3's 5 MiB.

``Findings`` holds the answers; ``backends.s3.integrity`` turns them into the
backend's settings. A store that fails (5xx, no answer) fails the probe with
``BackendUnavailable``: nothing is decided on a store that is down. A
``NotImplemented`` (501) answer is a refusal of the request's form.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from backends.crc import crc32
from backends.errors import BackendError, BackendUnavailable, Exists
from backends.s3.config import MiB, S3Config
from backends.s3.parts import ForwardedBody
from backends.s3.store import Store, crc32_b64, s3_code

#: a check's outcome: a right value stored and a wrong one refused ...
VERIFIED = "verified"
#: ... a wrong value stored as if right (the store does not check it) ...
IGNORED = "ignored"
#: ... or the form itself refused (the store's answer is in ``answers``)
REFUSED = "refused"
#: CompleteMultipartUpload with the parts' checksums, UploadPartCopy, ...
ACCEPTED = "accepted"

AWS_MIN_PART = 5 * MiB
#: the part-count limit tried when ``max_parts`` is refused (Swift s3api)
SWIFT_MAX_PARTS = 1000

log = logging.getLogger("backends.s3")

_DATA = b"upload-gateway start-up probe: what does this store check?\n"


@dataclass
class Findings:
    #: x-amz-checksum-crc32 on PutObject (verified or ignored) ...
    crc32_header: str = REFUSED
    #: ... and on UploadPart (accepted: a right value was taken)
    crc32_part_header: str = REFUSED
    #: the CRC32 in an aws-chunked trailer (a forwarded part)
    crc32_trailer: str = REFUSED
    #: CompleteMultipartUpload listing the parts' CRC32s
    crc32_complete: str = REFUSED
    content_md5: str = IGNORED
    upload_part_copy: str = REFUSED
    #: the ETag of a part the store took is the MD5 of its bytes (header
    #: and trailer forms alike; not with SSE-KMS on AWS)
    part_etag_md5: bool = False
    #: the highest part number the store takes (of those tried)
    max_parts: int = 0
    #: CompleteMultipartUpload listing some of the upload's parts (None: not tried)
    partial_complete: str | None = None
    #: PutObject with If-None-Match: * on an existing key (verified: refused
    #: with PreconditionFailed; ignored: it replaced the object)
    if_none_match: str = REFUSED
    #: the same for CompleteMultipartUpload (verified: refused on the
    #: existing key with PreconditionFailed, taken on a free one; Ceph RGW
    #: 16 ignores it, Swift 2.30's s3api refuses it on an existing key with
    #: InvalidRequest)
    complete_if_none_match: str = REFUSED
    #: a presigned GET of an object works (None: not tried)
    presigned: str | None = None
    #: parts of min_part_size are accepted before a last part (None: not tried)
    min_part_size: str | None = None
    #: check → the store's answer where it refused or misbehaved
    answers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def crc32_usable(self) -> bool:
        """Every form of CRC32 the backend sends is taken (checked or not)."""
        forms = (self.crc32_header, self.crc32_part_header, self.crc32_trailer, self.crc32_complete)
        return REFUSED not in forms

    @property
    def crc32_enforced(self) -> bool:
        """Every form of CRC32 the backend sends is taken and checked."""
        return (
            self.crc32_header == VERIFIED
            and self.crc32_part_header == ACCEPTED
            and self.crc32_trailer == VERIFIED
            and self.crc32_complete == ACCEPTED
        )

    def crc32_gap(self) -> str:
        """Why CRC32 cannot be the integrity check here ("" if it can)."""
        checks = (
            ("crc32_header", self.crc32_header, "x-amz-checksum-crc32"),
            ("crc32_header_part", self.crc32_part_header, "x-amz-checksum-crc32 on UploadPart"),
            ("crc32_trailer", self.crc32_trailer, "x-amz-checksum-crc32 in aws-chunked trailers"),
            ("crc32_complete", self.crc32_complete, "part checksums in CompleteMultipartUpload"),
        )
        for name, outcome, what in checks:
            if outcome == IGNORED:
                return f"store ignores {what}: a wrong value was stored"
            if outcome == REFUSED:
                return f"store refuses {what}: {self.answers.get(name, '?')}"
        return ""


def _refusal(exc: BackendError) -> str:
    """A 4xx answer as text; a store that is down fails the probe."""
    if isinstance(exc, BackendUnavailable):
        raise exc
    return str(exc)


class _Trailed(ForwardedBody):
    """A forwarded part body whose trailer carries a chosen CRC32."""

    def __init__(self, data: bytes, crc: str) -> None:
        super().__init__(len(data), trailer=True)
        self._crc = crc
        self.queue.put_nowait(data)
        self.queue.put_nowait(None)

    @property
    def checksum(self) -> str:
        return self._crc


class Prober:
    def __init__(self, store: Store, config: S3Config) -> None:
        self.store = store
        self.config = config
        self.base = f"{config.temp_prefix}probe/{uuid.uuid4().hex}"
        self.found = Findings()
        self._keys: list[str] = []
        self._object: asyncio.Future[None] = asyncio.Future()
        self._uploads: list[tuple[str, str]] = []

    async def run(self) -> Findings:
        loop = asyncio.get_running_loop()
        started = loop.time()
        # independent checks run side by side: three round trips in all
        self._object = asyncio.ensure_future(self._put(f"{self.base}/object"))
        try:
            jobs: list[Awaitable[None]] = [
                self._object,
                self._object_checks(),
                self._multipart_checks(),
                self._part_numbers(),
                self._if_none_match(),
                self._complete_if_none_match(),
            ]
            if self.config.url.mode == "presigned":
                jobs.append(self._presigned())
            if self.config.min_part_size < AWS_MIN_PART:
                jobs.append(self._small_parts())
            tasks = [asyncio.ensure_future(job) for job in jobs]
            try:
                await asyncio.gather(*tasks)
            except BaseException:  # no check goes on creating keys after this
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        finally:
            if not self._object.done():
                self._object.cancel()
        self.found.seconds = loop.time() - started
        return self.found

    # -- requests ----------------------------------------------------------------
    async def _put(self, key: str, data: bytes = _DATA, **headers: str) -> None:
        self._keys.append(key)
        await self.store.call("put_object", Key=key, Body=data, **headers)

    async def _attempt(self, name: str, call: Callable[[], Awaitable[Any]]) -> bool:
        """Did the store take it? A refusal is noted under ``name``."""
        try:
            await call()
        except BackendError as exc:
            self.found.answers[name] = _refusal(exc)
            return False
        return True

    async def _object_checks(self) -> None:
        f, key = self.found, f"{self.base}/crc32"
        right, wrong = _crc(_DATA), _crc(_DATA, wrong=True)
        md5 = base64.b64encode(hashlib.md5(_DATA + b"!").digest()).decode()
        taken, wrong_taken, md5_taken = await asyncio.gather(
            self._attempt("crc32_header", lambda: self._put(key, ChecksumCRC32=right)),
            self._attempt("crc32_header_wrong", lambda: self._put(f"{key}-x", ChecksumCRC32=wrong)),
            self._attempt("content_md5", lambda: self._put(f"{key}-md5", ContentMD5=md5)),
        )
        if taken:
            f.crc32_header = IGNORED if wrong_taken else VERIFIED
        f.content_md5 = IGNORED if md5_taken else VERIFIED

    async def _multipart_checks(self) -> None:
        """Upload ``main`` gets a part with its CRC32 in a header, upload
        ``trailed`` one with it in an aws-chunked trailer; one of them is
        completed with the checksum listed (the header's, unless the store
        refused it). Upload ``spare``, aborted, takes what must not end in an
        object (a part with a wrong CRC32, a copied part): parts left out
        of a Complete may stay behind as orphans (Swift's s3api keeps their
        segments)."""
        f, base = self.found, self.base
        main, trailed, spare = f"{base}/multipart", f"{base}/trailed", f"{base}/multipart-spare"
        main_id, trailed_id, spare_id = await asyncio.gather(
            *(self._create(key, ChecksumAlgorithm="CRC32") for key in (main, trailed, spare))
        )
        right, wrong = _crc(_DATA), _crc(_DATA, wrong=True)
        etags: dict[str, str] = {}

        async def header() -> None:
            etags[main] = await self.store.upload_part(main, main_id, 1, [_DATA], None, right)

        async def trailer() -> None:
            body = _Trailed(_DATA, right)
            etags[trailed] = await self.store.upload_part_streaming(trailed, trailed_id, 1, body)

        async def trailer_wrong() -> None:
            body = _Trailed(_DATA, wrong)
            await self.store.upload_part_streaming(spare, spare_id, 1, body)

        async def copy() -> None:
            await self._object
            source = f"{self.base}/object"
            await self.store.upload_part_copy(spare, spare_id, 2, source, 0, None)

        _, stored, wrong_taken, copied = await asyncio.gather(
            self._attempt("crc32_header_part", header),
            self._attempt("crc32_trailer", trailer),
            self._attempt("crc32_trailer_wrong", trailer_wrong),
            self._attempt("upload_part_copy", copy),
        )
        if copied:
            f.upload_part_copy = ACCEPTED
        if main in etags:
            f.crc32_part_header = ACCEPTED
        if stored:
            f.crc32_trailer = IGNORED if wrong_taken else VERIFIED
        f.part_etag_md5 = bool(etags) and all(
            etag.strip('"') == hashlib.md5(_DATA).hexdigest() for etag in etags.values()
        )
        key, upload_id = (main, main_id) if main in etags else (trailed, trailed_id)
        if key not in etags:
            return  # no part to complete with
        completed = await self._attempt(
            "crc32_complete", lambda: self.store.complete(key, upload_id, [etags[key]], [right])
        )
        if completed:
            f.crc32_complete = ACCEPTED
            self._uploads.remove((key, upload_id))

    async def _create(self, key: str, **extra: str) -> str:
        resp = await self.store.call("create_multipart_upload", Key=key, **extra)
        upload_id = str(resp["UploadId"])
        self._uploads.append((key, upload_id))
        self._keys.append(key)
        return upload_id

    async def _part_numbers(self) -> None:
        """The highest of ``max_parts`` and 1,000 the store takes (both at
        once, with parts 1 and 2, on an upload of their own that declares no
        checksum); then that upload completed from parts 1 and 2 alone."""
        key = f"{self.base}/part-numbers"
        upload_id = await self._create(key)

        async def one(n: int) -> bool:
            async def part() -> None:
                etags[n] = await self.store.upload_part(key, upload_id, n, [b"x"], None, None)

            return await self._attempt(f"max_parts_{n}" if n > 2 else f"part_{n}", part)

        etags: dict[int, str] = {}
        numbers = list(dict.fromkeys((self.config.max_parts, SWIFT_MAX_PARTS)))
        taken = await asyncio.gather(*(one(n) for n in [1, 2, *numbers]))
        self.found.max_parts = next((n for n, ok in zip(numbers, taken[2:], strict=True) if ok), 0)
        if all(taken[:2]) and len(etags) > 2:
            await self._partial_complete(key, upload_id, [etags[1], etags[2]])

    async def _partial_complete(self, key: str, upload_id: str, etags: list[str]) -> None:
        """Parts 1 and 2 of an upload with more: see the module docs."""
        try:
            await self.store.complete(key, upload_id, etags, None, [1, 2])
        except BackendError as exc:
            answer = _refusal(exc)
            if s3_code(exc) == "EntityTooSmall":  # past the part list, at the sizes
                self.found.partial_complete = ACCEPTED
            else:
                self.found.answers["partial_complete"] = answer
                self.found.partial_complete = REFUSED
            return
        self._uploads.remove((key, upload_id))
        self.found.partial_complete = ACCEPTED

    async def _if_none_match(self) -> None:
        """If-None-Match: * on a free key (taken), then on the probe object
        (refused with PreconditionFailed)."""
        free = f"{self.base}/if-none-match"
        self._keys.append(free)
        if not await self._attempt(
            "if_none_match", lambda: self.store.put(free, [_DATA], if_absent=True)
        ):
            return
        await self._object
        try:
            await self.store.put(f"{self.base}/object", [_DATA], if_absent=True)
        except Exists:
            self.found.if_none_match = VERIFIED
        except BackendError as exc:
            self.found.answers["if_none_match"] = _refusal(exc)
        else:
            self.found.if_none_match = IGNORED

    async def _complete_if_none_match(self) -> None:
        """CompleteMultipartUpload with If-None-Match: * of an upload on a
        free key (taken), and of one on the probe object (refused with
        PreconditionFailed; the upload is then aborted at clean-up)."""
        free, taken = f"{self.base}/complete-if-none-match", f"{self.base}/object"
        name = "complete_if_none_match"

        async def conditional(key: str) -> None:
            upload_id = await self._create(key)
            etag = await self.store.upload_part(key, upload_id, 1, [_DATA], None, None)
            if key == taken:
                await self._object
            await self.store.complete(key, upload_id, [etag], None, if_absent=True)
            self._uploads.remove((key, upload_id))

        async def on_taken() -> str:
            try:
                await conditional(taken)
            except Exists:
                return VERIFIED
            except BackendError as exc:
                self.found.answers[name] = _refusal(exc)
                return REFUSED
            self.found.answers[name] = "it replaced the object"
            return IGNORED

        made, outcome = await asyncio.gather(
            self._attempt(name, lambda: conditional(free)), on_taken()
        )
        if made:
            self.found.complete_if_none_match = outcome

    async def _presigned(self) -> None:
        await self._object
        url = await self.store.presign(f"{self.base}/object", 60)
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
                http.get(url) as resp,
            ):
                body = await resp.read()
                ok = resp.status == 200 and body == _DATA
                if not ok:
                    self.found.answers["presigned"] = f"HTTP {resp.status}: {body[:200]!r}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise BackendUnavailable(f"S3 presigned GET: the store did not answer: {exc}") from exc
        self.found.presigned = ACCEPTED if ok else REFUSED

    async def _small_parts(self) -> None:
        key = f"{self.base}/small-parts"
        upload_id = await self._create(key)
        size = self.config.min_part_size

        async def parts() -> None:
            etags = await asyncio.gather(
                self.store.upload_part(key, upload_id, 1, [bytes(size)], None, None),
                self.store.upload_part(key, upload_id, 2, [b"x"], None, None),
            )
            await self.store.complete(key, upload_id, list(etags), None)

        accepted = await self._attempt("min_part_size", parts)
        if accepted:
            self._uploads.remove((key, upload_id))
        self.found.min_part_size = ACCEPTED if accepted else REFUSED

    async def clean_up(self) -> list[str]:
        """Abort the probe's uploads and delete its objects; what is left."""

        async def quietly(job: Awaitable[None], what: str) -> str:
            try:
                await job
            except BackendError as exc:
                return f"{what} ({exc})"
            return ""

        left = await asyncio.gather(
            *(quietly(self.store.abort(k, u), f"upload {k}") for k, u in self._uploads),
            *(quietly(self.store.delete(k), k) for k in dict.fromkeys(self._keys)),
        )
        return [what for what in left if what]


def _crc(data: bytes, wrong: bool = False) -> str:
    crc = crc32(data)
    return crc32_b64(crc ^ 1 if wrong else crc)


@dataclass
class Probe:
    """What the store does, and the clean-up of the probe's keys, which
    goes on after the findings are in (await ``cleaned`` before closing)."""

    found: Findings
    cleaned: asyncio.Task[None]


async def probe(main: Store, config: S3Config, name: str) -> Probe:
    """Find out what the store does (see the module docs), through a client
    of its own that never retries: a refusal is an answer, not a glitch.
    The client shares ``main``'s session (its SDK model is costly to load)."""
    # not reported to the telemetry: its refusals are answers, not store errors
    store = Store(config.model_copy(update={"max_attempts": 1}), None, main.session)
    await store.open()
    prober = Prober(store, config)

    async def clean_up() -> None:
        try:
            left = await prober.clean_up()
        finally:
            await store.close()
        if left:
            log.warning(
                "s3 backend %r: the probe could not remove %d of its temporaries under %s: %s",
                name,
                len(left),
                prober.base,
                "; ".join(left[:3]),
            )

    try:
        found = await prober.run()
    except BaseException:
        await asyncio.shield(clean_up())
        raise
    return Probe(found, asyncio.get_running_loop().create_task(clean_up()))
