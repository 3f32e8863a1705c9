"""Progress ``104 (Upload Resumption Supported)`` responses while content
arrives.

The drafts since -03 (interop 5) let a server send 104s carrying
``Upload-Offset`` while it receives the content of a creation or an append
(the newest editor's copy: MAY on creation, SHOULD on append; never with
``Location`` after the first). Interop 3 and 4 define none: none is sent.
That offset is an acknowledgement: a later offset retrieval must not report
less, and the client may drop what it holds below it. So the gateway reports
only what the core has saved: the content is written in slices that end at
multiples of ``SLICE`` bytes of the upload (whole S3 parts at the default
part sizes), each slice a core write of its own (lock, store, save), and a
104 follows every slice that did not end the content.

Not sliced (one write, no progress 104): a request whose ``Content-Digest``
covers its content (its bytes stand or fall together), a request without an
interop version or over HTTP/1.0 (no 104 at all, ``interim.send_104``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gateway.core import Checksum, Status, UploadRecord
from gateway.protocols.ietf.interim import allowed, send_104
from gateway.protocols.ietf.versions import Version
from gateway.protocols.tus.context import TusContext

#: a progress 104 goes out each time the saved offset crosses a multiple of this
SLICE = 16 * 1024 * 1024


class _Slices:
    """One body read as consecutive slices of given sizes."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source
        self._held = b""
        self.exhausted = False

    async def take(self, size: int) -> AsyncIterator[bytes]:
        """Up to ``size`` bytes of the body (fewer at its end)."""
        left = size
        while left > 0:
            if self._held:
                chunk, self._held = self._held, b""
            else:
                try:
                    chunk = await anext(self._source)
                except StopAsyncIteration:
                    self.exhausted = True
                    return
            if len(chunk) > left:
                chunk, self._held = chunk[:left], chunk[left:]
            left -= len(chunk)
            yield chunk

    async def at_end(self) -> bool:
        """Whether the body has no more bytes (waits for the next ones)."""
        if self._held:
            return False
        try:
            self._held = await anext(self._source)
        except StopAsyncIteration:
            self.exhausted = True
        return self.exhausted


async def write(
    ctx: TusContext,
    version: Version,
    record: UploadRecord,
    offset: int,
    body: AsyncIterator[bytes],
    *,
    checksum: Checksum | None,
    declare_length: int | None,
    content_length: int | None,
    **more: Any,  # the rest of ``UploadService.write``'s options, passed on
) -> UploadRecord:
    """``service.write`` of ``body`` at ``offset``, in slices with a progress
    104 after each one that did not end the content (see the docstring)."""
    service = ctx.service
    if checksum is not None or not version.progress_104 or not allowed(ctx.request, version):
        return await service.write(
            record.id,
            offset,
            body,
            checksum=checksum,
            declare_length=declare_length,
            content_length=content_length,
            **more,
        )
    slices = _Slices(body)
    remaining = content_length
    # the first write is told the whole content's length: the core refuses
    # content that cannot fit before a byte of it is stored
    announced = content_length
    while True:
        size = SLICE - offset % SLICE
        record = await service.write(
            record.id,
            offset,
            slices.take(size),
            declare_length=declare_length,
            content_length=announced,
            **more,
        )
        declare_length = None
        written, offset = record.offset - offset, record.offset
        if remaining is not None:
            remaining -= written
        if written < size or record.status is not Status.ACTIVE or slices.exhausted:
            return record  # the content ended, was cut short, or the upload is complete
        if remaining == 0:
            await slices.at_end()  # the body's end is seen: the caller may complete it
            return record
        await send_104(ctx.request, version, {"Upload-Offset": str(offset)})
        if await slices.at_end():
            return record
        announced = None if remaining is None else min(SLICE, remaining)
