"""A range of a local file as a streamed request body, counted as it is
handed to the connection and paced by an optional shared rate limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

#: bytes read and handed to the connection at once (at most this much is held
#: per stream). A whole run sending 256 MiB to a loopback sink, load average ~15
#: (noisy; 4-5 s of it is start-up there): 256 KiB blocks 15-24 s, 1 MiB 11-12 s,
#: 4 MiB 12-13 s, against 6-11 s for one PATCH with requests in a running process
BLOCK = 1024 * 1024


class RateLimit:
    """At most ``rate`` bytes per second over every body that shares it."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._start = time.monotonic()
        self._sent = 0

    @property
    def block(self) -> int:
        return max(1024, min(BLOCK, self.rate // 10)) if self.rate else BLOCK

    async def take(self, n: int) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        if self._sent / self.rate < now - self._start - 1.0:
            # idle (between files, while retrying): no credit for the pause
            self._start, self._sent = now, 0
        self._sent += n
        ahead = self._sent / self.rate - (now - self._start)
        if ahead > 0:
            await asyncio.sleep(ahead)


async def file_range(
    path: Path, start: int, end: int, limit: RateLimit, on_bytes: Callable[[int], None]
) -> AsyncIterator[bytes]:
    """Bytes ``[start, end)`` of ``path``. Reads are small and local, so they
    are done inline rather than in a thread."""
    with open(path, "rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            block = f.read(min(limit.block, left))
            if not block:
                raise OSError(f"{path}: file shrank while being uploaded")
            left -= len(block)
            await limit.take(len(block))
            yield block
            on_bytes(len(block))


def read_range(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start)
