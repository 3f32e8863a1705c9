"""How the S3 backend protects the bytes it stores, chosen from what the
store really does (``backends.s3.probe``) and kept honest at run time.

``multipart_checksum: auto`` (the default) uses CRC32 where the store checks
it in every form the backend sends (a header on whole objects and buffered
parts, an aws-chunked trailer on forwarded parts, the list in
CompleteMultipartUpload), else Content-MD5, which S3 stores verify. ``CRC32``
or ``none`` (Content-MD5) are taken as set, but CRC32 on a store that does
not check it stops start-up. The choice is logged once at start::

    s3 backend 'default': integrity via Content-MD5 (store ignores
    x-amz-checksum-crc32: a wrong value was stored)

The same probe lowers ``max_parts`` to what the store takes (Swift s3api:
1,000) unless it was set, turns server-side part copies off on a store
without UploadPartCopy, and stops start-up when presigned URLs or a
``min_part_size`` below 5 MiB do not work there.

At run time a store can still answer in a way the probe did not foresee (a
store upgraded, or another one behind the same load balancer). Every such
fallback — a forwarded part sent again from its buffer, a
CompleteMultipartUpload repeated without checksums — is counted
(``fallbacks``, and the telemetry sink) and logged at WARNING with the
store's answer, at most once per cause per minute; an answer that shows the
probe was wrong runs it again (at most once a minute), and its findings
apply to new uploads. Parts of uploads that declared CRC32 are no longer
forwarded once the store refuses a trailer in that write or the re-probe
finds trailers refused: they are buffered and sent once, never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter

from backends.errors import (
    BackendConfigError,
    BackendError,
    BackendUnavailable,
    DigestMismatch,
    Exists,
    NotFound,
)
from backends.s3.config import S3Config
from backends.s3.probe import ACCEPTED, REFUSED, VERIFIED, Findings, probe
from backends.s3.store import Store
from backends.telemetry import BackendTelemetry

log = logging.getLogger("backends.s3")

#: the shortest time between two probes of one backend
REPROBE_INTERVAL = 60.0


class Integrity:
    def __init__(
        self, name: str, store: Store, config: S3Config, telemetry: BackendTelemetry
    ) -> None:
        self.name = name
        self.store = store
        self.config = config
        self.telemetry = telemetry
        #: fallbacks by reason (``trailer_refused``, ``etag_mismatch``, ...)
        self.fallbacks: Counter[str] = Counter()
        self.findings: Findings | None = None
        #: the store makes an object from some of an upload's parts (probed at start)
        self.partial_complete = True
        #: the store honours PutObject's If-None-Match: * (probed at start)
        self.if_none_match = False
        #: ... and CompleteMultipartUpload's (probed at start)
        self.complete_if_none_match = False
        #: a part's ETag is the MD5 of its bytes (probed): parts written with
        #: the client's MD5 are checked by it (``ObjectParts.write_part``)
        self.part_etag_md5 = False
        #: what protects the bytes now: "CRC32", "Content-MD5" or "nothing"
        self.mode = ""
        self.probes = 0
        self._probed_at = -REPROBE_INTERVAL
        self._task: asyncio.Task[None] | None = None
        #: the probes' clean-ups still running (``Probe.cleaned``)
        self._cleaning: set[asyncio.Task[None]] = set()

    async def start(self) -> S3Config:
        """Probe the store and apply what it does; the configuration to use
        (``max_parts`` may be lowered). ``BackendConfigError`` when a setting
        cannot be honoured there."""
        found = await self._probe()
        return self._apply(found, starting=True)

    async def _probe(self) -> Findings:
        self._probed_at = time.monotonic()
        self.probes += 1
        probed = await probe(self.store, self.config, self.name)
        self._cleaning.add(probed.cleaned)
        probed.cleaned.add_done_callback(self._cleaning.discard)
        self.findings = probed.found
        return probed.found

    # -- decisions -----------------------------------------------------------------
    def _apply(self, found: Findings, starting: bool) -> S3Config:
        cfg, where = self.config, f"s3 backend {self.name!r}"
        gap = found.crc32_gap()
        md5 = cfg.content_md5 and found.content_md5 == VERIFIED
        # CRC32 where the store checks it; else Content-MD5 where it checks
        # that; a store that checks neither gets CRC32 if it takes it (cheaper)
        crc32 = found.crc32_enforced or (found.crc32_usable and not md5)
        if cfg.multipart_checksum == "CRC32" and not crc32:
            self._refuse(
                f"{where}: multipart_checksum is CRC32, but the {gap}; use "
                "multipart_checksum: auto (Content-MD5 on this store) or none",
                starting,
            )
        use_crc32 = cfg.multipart_checksum != "none" and crc32
        self.store.checksum = "CRC32" if use_crc32 else None
        # uploads that declared CRC32 earlier stay forwarded only where trailers work
        self.store.trailers = found.crc32_trailer != REFUSED
        self.store.part_copy = found.upload_part_copy == ACCEPTED
        self.part_etag_md5 = found.part_etag_md5
        self._log_mode(found, use_crc32, gap, starting)
        # streams in flight have their part sizes: limits change at start only
        cfg = self._part_limits(found, starting) if starting else self.config
        if found.presigned == REFUSED:
            self._refuse(
                f"{where}: url mode presigned, but the store refused a presigned GET "
                f"({found.answers.get('presigned')}); use url mode gateway",
                starting,
            )
        if found.min_part_size == REFUSED:
            self._refuse(
                f"{where}: the store refuses parts of min_part_size ({cfg.min_part_size} bytes): "
                f"{found.answers.get('min_part_size')}; set min_part_size: 5MiB",
                starting,
            )
        if starting:
            self._partial_complete(found)
            self.if_none_match = found.if_none_match == VERIFIED
            self.complete_if_none_match = found.complete_if_none_match == VERIFIED
        if not self.store.part_copy and starting:
            log.info(
                "%s: the store has no UploadPartCopy (%s): parts are copied through the gateway",
                where,
                found.answers.get("upload_part_copy"),
            )
        self.config = cfg
        return cfg

    def _log_mode(self, found: Findings, use_crc32: bool, gap: str, starting: bool) -> None:
        where = f"s3 backend {self.name!r}"
        if use_crc32 and found.crc32_enforced:
            self.mode = "CRC32"
            reason = "store verifies x-amz-checksum-crc32 in headers, trailers and Complete"
        elif not use_crc32 and self.config.content_md5 and found.content_md5 == VERIFIED:
            self.mode = "Content-MD5"
            reason = gap if self.config.multipart_checksum == "auto" else "multipart_checksum: none"
        else:
            self.mode = "nothing"
            why = "content_md5 is off" if not self.config.content_md5 else "a wrong one was stored"
            log.warning(
                "%s: the store checks no bytes it stores: not CRC32 (%s), not Content-MD5 (%s); "
                "parts go with %s",
                where,
                gap or "multipart_checksum: none",
                why,
                "CRC32" if use_crc32 else "Content-MD5",
            )
            return
        level = logging.INFO if starting else logging.WARNING
        log.log(
            level,
            "%s: integrity via %s (%s; probe %.0f ms)%s",
            where,
            self.mode,
            reason,
            found.seconds * 1000,
            "" if starting else ", after the store answered differently",
        )

    def _partial_complete(self, found: Findings) -> None:
        self.partial_complete = found.partial_complete != REFUSED
        if not self.partial_complete:
            log.info(
                "s3 backend %r: the store makes an object only from every part of its "
                "multipart upload (%s): Qiniu v2 parts are stored on their own and "
                "assembled at completion",
                self.name,
                found.answers.get("partial_complete"),
            )

    def _part_limits(self, found: Findings, starting: bool) -> S3Config:
        cfg, where = self.config, f"s3 backend {self.name!r}"
        if found.max_parts >= cfg.max_parts:
            return cfg
        answer = found.answers.get(f"max_parts_{cfg.max_parts}")
        if "max_parts" in cfg.model_fields_set or not found.max_parts:
            self._refuse(
                f"{where}: max_parts is {cfg.max_parts}, but the store refuses part number "
                f"{cfg.max_parts} ({answer}); set max_parts to what it allows",
                starting,
            )
            return cfg
        log.info(
            "%s: the store takes at most %d parts (part %d refused: %s)",
            where,
            found.max_parts,
            cfg.max_parts,
            answer,
        )
        changes: dict[str, int] = {"max_parts": found.max_parts}
        if cfg.max_object_size > found.max_parts * cfg.max_part_size:
            changes["max_object_size"] = found.max_parts * cfg.max_part_size
        return cfg.model_copy(update=changes)

    def _refuse(self, message: str, starting: bool) -> None:
        if starting:
            raise BackendConfigError(message)
        log.error(message)

    # -- at run time ---------------------------------------------------------------
    def fallback(self, operation: str, reason: str, done: str, answer: str) -> None:
        """Count a fallback and log it (WARNING, once a minute per cause)."""
        self.fallbacks[reason] += 1
        self.telemetry.fallback(operation, reason, f"{done}; the store said: {answer}")

    def copy_refused(self, exc: BackendError, instead: str) -> bool:
        """An UploadPartCopy failed: True if the store refused it (counted,
        logged, and probed again: the caller does ``instead``); False if
        the store is down or the source gone (the caller raises)."""
        if isinstance(exc, NotFound | BackendUnavailable):
            return False
        self.store.part_copy = False  # until the re-probe finds it works
        self.fallback("upload_part_copy", "part_copy_refused", instead, str(exc))
        self.doubt()
        return True

    def forward_fallback(self, operation: str, reason: str, answer: str) -> None:
        """A forwarded PutObject or UploadPart (``PartPipe``) failed: it is sent
        again from its buffer. A refused checksum trailer (``trailer_refused``)
        also stops forwarding with checksums and probes again: the re-probe
        says whether trailers work after all."""
        self.fallback(operation, reason, "sent again from its buffer", answer)
        if reason == "trailer_refused":
            self.store.trailers = False
            self.doubt()

    def check_etag(self, operation: str, what: str, etag: str, md5: bytes) -> None:
        """``DigestMismatch`` if the ETag ``operation`` stored ``what`` with
        is not the MD5 its client sent: the bytes changed on their way, or
        the store's ETags are no longer MD5s (its encryption changed).
        Refused either way; counted, logged, and probed again — until the
        re-probe finds ETags are MD5s, such writes are hashed here."""
        if etag.strip('"') == md5.hex():
            return
        self.fallback(
            operation,
            "etag_mismatch",
            f"{what} refused as a digest mismatch",
            f"ETag {etag}, the client's MD5 {md5.hex()}",
        )
        self.doubt()
        raise DigestMismatch(f"{what}: the store's ETag {etag} is not the MD5 sent")

    def part_fallback(self, reason: str, answer: str) -> None:
        """A forwarded part is sent again from its buffer (``PartPipe``)."""
        self.forward_fallback("upload_part", reason, answer)

    async def complete(
        self,
        key: str,
        upload_id: str,
        etags: list[str],
        checksums: list[str] | None,
        numbers: list[int] | None = None,
        if_absent: bool = False,
    ) -> None:
        """CompleteMultipartUpload; refused with the parts' checksums (a
        store that does not know them), once more without. With
        ``if_absent``: ``Exists`` where the key holds an object."""
        try:
            await self.store.complete(key, upload_id, etags, checksums, numbers, if_absent)
        except (NotFound, BackendUnavailable, Exists):
            raise
        except BackendError as exc:
            if not checksums:
                raise
            self.fallback("complete", "checksums_refused", "completed without checksums", str(exc))
            self.doubt()
            await self.store.complete(key, upload_id, etags, None, numbers, if_absent)

    def doubt(self) -> None:
        """The store answered against the probe: probe again, at once or as
        soon as a minute has passed since the last probe."""
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.get_running_loop().create_task(self._reprobe())

    async def _reprobe(self) -> None:
        wait = self._probed_at + REPROBE_INTERVAL - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            found = await self._probe()
        except BackendError as exc:
            self.telemetry.warn(
                "reprobe", "s3 backend %r: probing again failed: %s", self.name, exc
            )
            return
        self._apply(found, starting=False)

    async def cleaned(self) -> None:
        """Wait until the probes' temporaries are removed."""
        for task in list(self._cleaning):
            with contextlib.suppress(Exception):
                await task

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self.cleaned()  # before the store is let go
