"""What a run of in-process requests leaves in reference cycles: the gateway
collects rarely (``ARCHITECTURE.md``, §1), so a request caught in one keeps its
body's bytes until a full collection."""

from __future__ import annotations

import asyncio
import gc
import os
import types
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.core.body import GuardedBody
from gateway.http_trailers import _RecordingHeadersParser, _TrailerRequestParser
from gateway.protocols.bodies import RequestBody
from gateway.protocols.tus.context import TusContext

_OURS = (TusContext, RequestBody, GuardedBody, _TrailerRequestParser, _RecordingHeadersParser)


def _the_gateways(o: object) -> bool:
    """An object of the gateway's request path, or a frame of its code
    (holding what its locals held). Not aiohttp's own: a request whose client
    vanished while its handler waited stays in a cycle of aiohttp 3.14's
    (``RequestHandler.start``'s frame in its CancelledError's traceback)."""
    if isinstance(o, _OURS):
        return True
    return isinstance(o, types.FrameType) and f"{os.sep}gateway{os.sep}" in o.f_code.co_filename


def _name(o: object) -> str:
    if isinstance(o, types.FrameType):
        where = o.f_code.co_filename.rsplit(os.sep, 2)[-1]
        return f"frame of {o.f_code.co_name} ({where}:{o.f_lineno})"
    return type(o).__name__


def unreachable() -> list[str]:
    """What a collection finds unreachable that is the gateway's, named (the
    collector stays as it was)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return [_name(o) for o in gc.garbage if _the_gateways(o)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def left_in_cycles(run: Callable[[], Coroutine[Any, Any, None]]) -> list[str]:
    """``run()`` with the collector off; then ``unreachable()``."""
    gc.collect()
    gc.disable()
    try:
        asyncio.run(run())
        return unreachable()
    finally:
        gc.enable()


async def cut_request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    sent: bytes,
    pause: float,
    announced: int = 1 << 30,
) -> None:
    """A request announcing ``announced`` body bytes whose client vanishes
    ``pause`` seconds after sending ``sent`` of them (0: before the gateway
    reads them; later: while it waits for more)."""
    fields = {"Host": "127.0.0.1", "Content-Length": str(announced), **headers}
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode() + b"\r\n" + sent)
    await writer.drain()
    await asyncio.sleep(pause)
    writer.transport.abort()
