"""Making one object from whole objects already in the bucket.

* ``UploadPartCopy`` when every source but the last is at least the minimum
  part size: the store copies, no byte passes through the gateway (sources
  over ``max_part_size`` are copied in several ranges);
* otherwise copy-through: the sources are read in order and cut into parts
  by a ``PartPipe`` (bounded memory, several parts in flight). So also on a
  store without UploadPartCopy (found by the start-up probe), and, counted
  as a fallback, when the store refuses one anyway (on a new upload).

A multipart upload that fails half-way is aborted before the error leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from backends.base import MemoryBudget
from backends.errors import BackendError
from backends.s3.config import S3Config
from backends.s3.integrity import Integrity
from backends.s3.parts import Part, PartPipe
from backends.s3.store import Store


@dataclass(frozen=True)
class Source:
    key: str
    size: int


@dataclass(frozen=True)
class CopyRange:
    source: str
    first: int
    last: int  # inclusive


def copy_plan(sources: Sequence[Source], config: S3Config) -> list[CopyRange] | None:
    """The parts of a server-side copy, or None if the store cannot do it."""
    plan: list[CopyRange] = []
    for index, src in enumerate(sources):
        is_last = index == len(sources) - 1
        if src.size < config.min_part_size and not is_last:
            return None
        pieces = max(1, -(-src.size // config.max_part_size))
        step = -(-src.size // pieces)  # even ranges, each ≥ half of max_part_size
        for first in range(0, src.size, step):
            plan.append(CopyRange(src.key, first, min(first + step, src.size) - 1))
    if len(plan) > config.max_parts:
        return None
    return plan


#: the user metadata key of an object's SHA-256 (``x-amz-meta-sha256``)
SHA256_META = "sha256"


class Copier:
    def __init__(
        self, store: Store, config: S3Config, budget: MemoryBudget, integrity: Integrity
    ) -> None:
        self.store = store
        self.config = config
        self.budget = budget
        self.integrity = integrity

    async def make(
        self,
        sources: Sequence[Source],
        key: str,
        content_type: str | None = None,
        sha256: str | None = None,
    ) -> None:
        """Write ``key`` as the concatenation of ``sources`` (none may be
        empty), with ``sha256`` as its user metadata ``x-amz-meta-sha256``."""
        metadata = {SHA256_META: sha256} if sha256 else None
        if not sources:
            await self.store.put(key, [], content_type=content_type, metadata=metadata)
            return
        if len(sources) == 1 and sources[0].size <= self.config.max_part_size:
            await self.store.copy(sources[0].key, key, content_type, metadata)
            return
        plan = copy_plan(sources, self.config) if self.store.part_copy else None
        if plan is not None:
            try:
                await self._make(sources, key, content_type, metadata, plan)
                return
            except BackendError as exc:
                # refused after the probe found it worked: through the gateway
                if not self.integrity.copy_refused(exc, "copied through the gateway"):
                    raise
        await self._make(sources, key, content_type, metadata, None)

    async def _make(
        self,
        sources: Sequence[Source],
        key: str,
        content_type: str | None,
        metadata: dict[str, str] | None,
        plan: list[CopyRange] | None,
    ) -> None:
        """One multipart upload: parts copied by the store along ``plan``,
        or through the gateway (None)."""
        checksum = self.store.checksum
        upload_id = await self.store.create_multipart(key, content_type, checksum, metadata)
        try:
            if plan is not None:
                parts = await self._copy_parts(plan, key, upload_id)
            else:
                parts = await self._copy_through(sources, key, upload_id, checksum is not None)
            etags, checksums = [etag for etag, _ in parts], [crc for _, crc in parts]
            await self.integrity.complete(key, upload_id, etags, checksums if checksum else None)
        except BaseException:
            await asyncio.shield(self._abort_quietly(key, upload_id))
            raise

    async def _abort_quietly(self, key: str, upload_id: str) -> None:
        # if the store is failing, a bucket lifecycle rule reaps the upload
        with contextlib.suppress(BackendError):
            await self.store.abort(key, upload_id)

    async def _copy_parts(self, plan: list[CopyRange], key: str, upload_id: str) -> list[Part]:
        gate = asyncio.Semaphore(self.config.max_concurrency)

        async def one(number: int, part: CopyRange) -> Part:
            async with gate:
                return await self.store.upload_part_copy(
                    key, upload_id, number, part.source, part.first, part.last
                )

        tasks = [asyncio.ensure_future(one(n, p)) for n, p in enumerate(plan, start=1)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _copy_through(
        self, sources: Sequence[Source], key: str, upload_id: str, checksum: bool
    ) -> list[Part]:
        total = sum(s.size for s in sources)
        pipe = PartPipe(
            self.store,
            key,
            upload_id,
            self.config.part_size_for(total),
            first_number=1,
            concurrency=self.config.max_concurrency,
            budget=self.budget,
            hashing=self.config.content_md5,
            expected_end=total if self.store.forwards(checksum) else None,
            checksum=checksum,
            fallback=self.integrity.part_fallback,
        )
        async with pipe.running():
            async with contextlib.aclosing(self._read_all(sources)) as chunks:
                async for chunk in chunks:
                    if pipe.failure is not None:
                        break
                    await pipe.feed(chunk)
            if pipe.failure is None and pipe.buffered:
                await pipe.send()  # the last, short part
            etags, failure = await pipe.results()
        if failure is not None:
            raise failure
        return etags

    async def _read_all(self, sources: Sequence[Source]) -> AsyncGenerator[bytes, None]:
        """The sources' bytes in order. Sources no larger than a part (Qiniu
        blocks and parts) are fetched whole, ``max_concurrency`` ahead, so
        their GETs overlap instead of waiting one after the other; larger
        ones are streamed in their turn."""
        small = self.config.part_size
        ahead: dict[int, asyncio.Task[bytes]] = {}

        def fetch_ahead(start: int) -> None:
            for index in range(start, min(start + self.config.max_concurrency, len(sources))):
                src = sources[index]
                if src.size <= small and index not in ahead:
                    ahead[index] = asyncio.ensure_future(self.store.get_bytes(src.key, src.size))

        try:
            for index, src in enumerate(sources):
                fetch_ahead(index)
                task = ahead.pop(index, None)
                if task is not None:
                    yield await task
                    continue
                async with contextlib.aclosing(self.store.read(src.key, 0, None)) as chunks:
                    async for chunk in chunks:
                        yield chunk
        finally:
            for task in ahead.values():
                task.cancel()
            await asyncio.gather(*ahead.values(), return_exceptions=True)
