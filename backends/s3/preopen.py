"""UploadParts opened ahead of the write that will fill them.

A store answers every UploadPart after a fixed cost (authentication and
lookups before it reads the first byte; on Swift's s3api a third of an
8 MiB part on loopback: bench/RESULTS.md, the S3 section of session 2). A
client sending PATCH after PATCH waits for that cost once per part. So
when a write leaves a stream exactly on a part boundary, the next part's
UploadPart is started right away — headers sent,
``Content-Length`` the part size, body a ``ForwardedBody`` nobody feeds
yet — and the next write, if it starts at that offset and will fill the
part, feeds it (``PartPipe``'s ``preopened``). Nothing depends on it:

* it belongs to this process only; a next write that goes to another
  instance, a restart, a write at another offset or too short to fill the
  part, finishing or terminating the stream, or ``preopen_timeout`` passing
  all cancel it, and a part whose body was cut short is never stored;
* a write is still answered only once its own bytes are stored;
* it buffers no bytes (the memory budget is untouched) and holds one
  connection of the pool: at most ``preopen_parts`` are open gateway-wide,
  one per stream.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from backends.s3.parts import Forward, ForwardedBody, cancel_forward
from backends.s3.store import Store

#: which part of which upload: key, upload id, part number, length, checksum
_Spec = tuple[str, str, int, int, bool]


@dataclass
class _Opened:
    spec: _Spec
    forward: Forward
    timer: asyncio.TimerHandle


class PreOpener:
    def __init__(self, store: Store, limit: int, timeout: float) -> None:
        self.store = store
        self.limit = limit
        self.timeout = timeout
        self._open: dict[str, _Opened] = {}

    @property
    def enabled(self) -> bool:
        return self.limit > 0 and self.timeout > 0 and self.store.can_forward

    def __len__(self) -> int:
        return len(self._open)

    def open(
        self, stream_id: str, key: str, upload_id: str, number: int, length: int, checksum: bool
    ) -> None:
        """Start part ``number`` (``length`` bytes, with a CRC32 trailer if
        ``checksum``) of a stream's upload, replacing any part opened before
        for it; nothing if at the limit."""
        self.drop(stream_id)
        if not self.enabled or not self.store.forwards(checksum) or len(self._open) >= self.limit:
            return
        loop = asyncio.get_running_loop()
        body = ForwardedBody(length, trailer=checksum)
        task = loop.create_task(self.store.upload_part_streaming(key, upload_id, number, body))
        timer = loop.call_later(self.timeout, self._expire, stream_id, task)
        spec = (key, upload_id, number, length, checksum)
        self._open[stream_id] = _Opened(spec, (body, task), timer)

    def take(
        self, stream_id: str, key: str, upload_id: str, number: int, length: int, checksum: bool
    ) -> Forward | None:
        """The part opened for exactly this one, if still waiting; any other
        part opened for the stream is cancelled."""
        opened = self._open.pop(stream_id, None)
        if opened is None:
            return None
        opened.timer.cancel()
        task = opened.forward[1]
        if opened.spec == (key, upload_id, number, length, checksum) and not task.done():
            return opened.forward
        cancel_forward(task)
        return None

    def drop(self, stream_id: str) -> None:
        """Cancel the part opened for a stream, if any."""
        opened = self._open.pop(stream_id, None)
        if opened is not None:
            opened.timer.cancel()
            cancel_forward(opened.forward[1])

    def _expire(self, stream_id: str, task: asyncio.Task[str]) -> None:
        opened = self._open.get(stream_id)
        if opened is not None and opened.forward[1] is task:
            self.drop(stream_id)

    async def close(self) -> None:
        tasks = [o.forward[1] for o in self._open.values()]
        for stream_id in list(self._open):
            self.drop(stream_id)
        await asyncio.gather(*tasks, return_exceptions=True)
