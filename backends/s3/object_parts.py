"""An object written as numbered parts of one multipart upload on its own
key (``Capability.OBJECT_PARTS``): each part is stored once, forwarded to
UploadPart as its bytes arrive (``PartPipe``), and CompleteMultipartUpload
makes the object — nothing is copied, nothing is visible before.

The upload's state: ``{"key", "upload_id", "checksum", "content_type"}``;
a part's: ``{"object_part": n, "etag", "crc", "size"}``, which
``discard_stream`` takes as holding nothing (the part lives and dies with
its upload; a part written again replaces it, S3's own rule).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from backends.base import JSON, MemoryBudget, ObjectInfo, ObjectMeta, StreamInfo
from backends.errors import InvalidState
from backends.s3.config import S3Config
from backends.s3.integrity import Integrity
from backends.s3.parts import PartPipe, fetch_pieces
from backends.s3.state import Piece, StreamState
from backends.s3.store import Store, crc32_of
from backends.telemetry import BackendTelemetry

MARK = "object_part"


def is_object_part(state: JSON) -> bool:
    return MARK in state


class ObjectParts:
    def __init__(
        self,
        store: Store,
        config: S3Config,
        budget: MemoryBudget,
        integrity: Integrity,
        telemetry: BackendTelemetry,
    ) -> None:
        self.telemetry = telemetry
        self.store = store
        self.config = config
        self.budget = budget
        self.integrity = integrity

    async def open(self, key: str, meta: ObjectMeta | None) -> JSON:
        content_type = meta.content_type if meta is not None else None
        checksum = self.store.checksum
        upload_id = await self.store.create_multipart(key, content_type, checksum)
        return {
            "key": key,
            "upload_id": upload_id,
            "checksum": checksum,
            "content_type": content_type,
        }

    async def write_part(
        self,
        upload: JSON,
        number: int,
        body: AsyncIterator[bytes],
        length: int,
        md5: bytes | None = None,
    ) -> JSON:
        if not 1 <= number <= (self.config.max_parts or 10000) or length <= 0:
            raise InvalidState(f"part {number} of {length} bytes cannot be a part of the upload")
        checksum = upload.get("checksum") is not None
        pipe = PartPipe(
            self.store, str(upload["key"]), str(upload["upload_id"]), length,
            first_number=number, concurrency=1, budget=self.budget,
            # given the client's MD5, the part's ETag is checked against it,
            # not hashed here (even if a re-probe found since that ETags are
            # no MD5s: the part is then refused, never taken unchecked)
            hashing=self.config.content_md5 and md5 is None,
            # (the pipe counts offsets from part 1's start, parts of ``length``)
            expected_end=number * length if self.store.forwards(checksum) else None,
            checksum=checksum, fallback=self.integrity.part_fallback,
        )  # fmt: skip
        received = 0
        async with pipe.running():
            async for chunk in body:
                if pipe.failure is not None:
                    break
                received += len(chunk)
                if received > length:
                    raise InvalidState(f"part {number} is longer than {length} bytes")
                await pipe.feed(chunk)
            parts, failure = await pipe.results()
        if failure is not None:
            raise failure
        if received != length or not parts:
            raise InvalidState(f"part {number} ended at {received} of {length} bytes")
        etag, crc = parts[0]
        if md5 is not None:
            self.integrity.check_etag("upload_part", f"part {number} of {upload['key']}", etag, md5)
        return {MARK: number, "etag": etag, "crc": crc, "size": length}

    async def complete(
        self,
        upload: JSON,
        parts: Sequence[tuple[int, JSON]],
        last: tuple[int, StreamInfo] | None,
        meta: ObjectMeta | None,
        if_absent: bool = False,
    ) -> ObjectInfo:
        key, upload_id = str(upload["key"]), str(upload["upload_id"])
        numbers = [n for n, _ in parts]
        etags = [str(p["etag"]) for _, p in parts]
        crcs = [str(p.get("crc") or "") for _, p in parts]
        size = sum(int(p["size"]) for _, p in parts)
        if last is not None and last[1].offset:
            number, stream = last
            etag, crc = await self._last_part(upload, number, stream)
            numbers.append(number)
            etags.append(etag)
            crcs.append(crc)
            size += stream.offset
        if not numbers:
            raise InvalidState("an object needs at least one part")
        checksums = crcs if upload.get("checksum") else None
        await self.integrity.complete(key, upload_id, etags, checksums, numbers, if_absent)
        wanted = meta.content_type if meta is not None else None
        if wanted and wanted != upload.get("content_type"):
            # S3 fixes a type at CreateMultipartUpload: set the decided one
            # (a server-side copy onto itself; the bytes are already right)
            self.telemetry.fallback(
                "complete_object",
                "content_type",
                f"{key}: content type {wanted} set after completion (a copy onto itself)",
            )
            await self.store.copy(key, key, wanted)
        return ObjectInfo(key=key, size=size, content_type=wanted)

    async def _last_part(self, upload: JSON, number: int, stream: StreamInfo) -> tuple[str, str]:
        """A finished stream (smaller than a part) as the final part: copied
        by the store when it can, else through the gateway."""
        st = StreamState.from_json(stream.state)
        if not st.sealed:
            raise InvalidState(f"stream {stream.id} is not finished")
        key, upload_id = str(upload["key"]), str(upload["upload_id"])
        if self.store.part_copy:
            return await self.store.upload_part_copy(key, upload_id, number, st.key, 0, None)
        await self.budget.acquire(st.size)
        try:
            data = await fetch_pieces(self.store, [Piece(st.key, 0, st.size)], 1)
            crc = crc32_of(data) if upload.get("checksum") else None
            etag = await self.store.upload_part(key, upload_id, number, data, None, crc)
            return etag, crc or ""
        finally:
            self.budget.release(st.size)

    async def abort(self, upload: JSON) -> None:
        await self.store.abort(str(upload["key"]), str(upload["upload_id"]))
