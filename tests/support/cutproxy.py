"""A loopback TCP proxy that can cut a connection after N client bytes —
to drop a client mid-request, as a flaky network does — can pace what
clients send (``rate``: bytes per second over all connections), as a slow
uplink does, and can flip bits of the bytes it passes on, as a faulty NIC
or switch does."""

from __future__ import annotations

import asyncio
import threading
import time

from testservers.ports import free_port


class CutProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._cut_after: int | None = None
        self.cuts = 0
        #: client → server bytes per second, all connections together; None = as fast as possible
        self.rate: int | None = None
        self._paced = (time.monotonic(), 0)
        self._flip_once: int | None = None
        self._flip_every: int | None = None
        self.flips = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_next_after(self, nbytes: int) -> None:
        """The next connection carrying more than ``nbytes`` client bytes is cut there."""
        self._cut_after = nbytes

    async def _pace(self, n: int) -> None:
        if not self.rate:
            return
        start, sent = self._paced
        now = time.monotonic()
        if sent / self.rate < now - start - 0.5:  # idle: no burst for the pause
            start, sent = now, 0
        self._paced = (start, sent + n)
        ahead = (sent + n) / self.rate - (now - start)
        if ahead > 0:
            await asyncio.sleep(ahead)

    def flip_next_at(self, offset: int) -> None:
        """Flip one byte, once: the one at ``offset`` of the next connection
        carrying that many client bytes."""
        self._flip_once = offset

    def flip_every(self, interval: int | None) -> None:
        """Flip the byte at every multiple of ``interval`` of every
        connection's client bytes (None: stop)."""
        self._flip_every = interval

    def _flip(self, data: bytes, sent: int) -> bytes:
        """``data`` (bytes ``[sent, sent + len)`` of a connection), bits flipped as asked."""
        spots: list[int] = []
        once = self._flip_once
        if once is not None and sent <= once < sent + len(data):
            self._flip_once = None
            spots.append(once - sent)
        every = self._flip_every
        if every:
            first = -(-max(sent, 1) // every) * every
            spots.extend(range(first - sent, len(data), every))
        if not spots:
            return data
        buf = bytearray(data)
        for spot in spots:
            buf[spot] ^= 0x20
        self.flips += len(spots)
        return bytes(buf)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        sreader, swriter = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def upstream() -> None:
            sent = 0
            try:
                while data := await creader.read(16384 if self.rate else 65536):
                    data = self._flip(data, sent)
                    limit = self._cut_after
                    if limit is not None and sent + len(data) > limit:
                        self._cut_after = None
                        self.cuts += 1
                        swriter.write(data[: limit - sent])
                        await swriter.drain()
                        await asyncio.sleep(0.2)  # let the server read what arrived
                        swriter.transport.abort()
                        cwriter.transport.abort()
                        return
                    sent += len(data)
                    await self._pace(len(data))
                    swriter.write(data)
                    await swriter.drain()
                swriter.write_eof()
            except (ConnectionError, OSError):
                swriter.transport.abort()

        async def downstream() -> None:
            try:
                while data := await sreader.read(65536):
                    cwriter.write(data)
                    await cwriter.drain()
            except (ConnectionError, OSError):
                pass
            cwriter.transport.abort()

        await asyncio.gather(upstream(), downstream())

    def __enter__(self) -> CutProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shutdown)
        self._thread.join(5)
