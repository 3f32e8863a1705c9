"""No tus request leaves its objects in reference cycles: the gateway
collects rarely (``ARCHITECTURE.md``, §1), and a request caught in one keeps
its body's unread bytes until a full collection. In-process (local disk), the
collector off while requests run; what a collection then finds unreachable
must hold nothing of the gateway's."""

from __future__ import annotations

import asyncio
import gc
import os
import types
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from gateway.app import create_app
from gateway.config import load_config
from gateway.core.body import GuardedBody
from gateway.http_trailers import _RecordingHeadersParser, _TrailerRequestParser
from gateway.protocols.bodies import RequestBody
from gateway.protocols.tus.context import TusContext
from tests.tus.helpers import OCTET, TUS


def _config(tmp_path: Path) -> Any:
    return load_config(
        {
            "backends": {"default": {"type": "local", "root": str(tmp_path / "data")}},
            "buckets": {"default": {"backend": "default"}},
            "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
        }
    )


async def _cut_patch(port: int, path: str, offset: int, sent: bytes, pause: float) -> None:
    """A PATCH announcing 1 GiB whose client vanishes ``pause`` seconds after
    ``sent`` (0: before the gateway reads them; later: while it waits for more)."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: {OCTET['Content-Type']}\r\n"
        f"Content-Length: {1 << 30}\r\n\r\n"
    )
    writer.write(head.encode() + sent)
    await writer.drain()
    await asyncio.sleep(pause)
    writer.transport.abort()


def _the_gateways(o: object) -> bool:
    """An object of the gateway's request path, or a frame of its code
    (holding what its locals held). Not aiohttp's own: a request whose client
    vanished while its handler waited stays in a cycle of aiohttp 3.14's
    (``RequestHandler.start``'s frame in its CancelledError's traceback)."""
    ours = (TusContext, RequestBody, GuardedBody, _TrailerRequestParser, _RecordingHeadersParser)
    if isinstance(o, ours):
        return True
    return isinstance(o, types.FrameType) and f"{os.sep}gateway{os.sep}" in o.f_code.co_filename


def _name(o: object) -> str:
    if isinstance(o, types.FrameType):
        return f"frame of {o.f_code.co_name} ({o.f_code.co_filename.rsplit(os.sep, 2)[-1]}:{o.f_lineno})"
    return type(o).__name__


def test_requests_leave_nothing_in_cycles(tmp_path: Path) -> None:
    sent = os.urandom(256 * 1024)

    async def main() -> None:
        app = create_app(_config(tmp_path), access_log=False)
        async with TestClient(TestServer(app)) as client:
            port = client.port
            assert port is not None
            r = await client.post("/files/", headers={**TUS, "Upload-Length": str(1 << 30)})
            assert r.status == 201
            path = URL(r.headers["Location"]).path
            r = await client.patch(path, data=sent, headers={**TUS, **OCTET, "Upload-Offset": "0"})
            assert r.status == 204
            for pause in (0, 0, 0, 0.1, 0.1, 0.1):
                r = await client.head(path, headers=TUS)
                await _cut_patch(port, path, int(r.headers["Upload-Offset"]), sent, pause)
            r = await client.head(path, headers=TUS)  # the cut PATCHes are over
            assert r.status == 200

    gc.collect()
    gc.disable()
    try:
        asyncio.run(main())
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        caught = [o for o in gc.garbage if _the_gateways(o)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not caught, f"left in reference cycles: {[_name(o) for o in caught]}"
