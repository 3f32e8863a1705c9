"""gateway.http_trailers swaps in aiohttp's pure-Python request parser; its
pause/resume must not lose the end of a chunked body."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.base_protocol import BaseProtocol

from gateway import http_trailers


class _Transport:
    reading = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading


class _Protocol(BaseProtocol):
    """The parts of aiohttp's server protocol that pause and resume the parser."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop, http_trailers._TrailerRequestParser(self, loop, 2**16))
        self.transport = _Transport()  # type: ignore[assignment]
        self.messages: list[Any] = []

    def data_received(self, data: bytes) -> None:
        assert self._parser is not None
        messages, _, _ = self._parser.feed_data(data)
        self.messages.extend(messages)


def test_body_end_arriving_after_a_resume_is_parsed() -> None:
    # A handler slower than its client (a backend still opening its upstream
    # request) lets the body pass the reader's high-water mark: the parser is
    # paused, then resumed once the handler drained it; the rest of the body
    # then arrives in one last segment and must still reach the reader.
    async def main() -> None:
        proto = _Protocol(asyncio.get_running_loop())
        proto.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        ((_, payload),) = proto.messages
        size = 200 * 1024
        proto.data_received(b"%x\r\n" % size + b"x" * size)
        assert proto._reading_paused
        assert len(await payload.readany()) == size
        assert not proto._reading_paused
        proto.data_received(b"\r\n2\r\nab\r\n0\r\n\r\n")
        assert await asyncio.wait_for(payload.read(), 1) == b"ab"
        assert payload.is_eof()

    asyncio.run(main())
