"""No tus (or IETF draft) request leaves its objects in reference cycles: the gateway
collects rarely (``ARCHITECTURE.md``, §1), and a request caught in one keeps
its body's unread bytes until a full collection. In-process (local disk), the
collector off while requests run; what a collection then finds unreachable
must hold nothing of the gateway's."""

from __future__ import annotations

import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from gateway.app import create_app
from gateway.config import load_config
from tests.support.cycles import cut_request, left_in_cycles
from tests.tus.helpers import OCTET, TUS


def _config(tmp_path: Path) -> Any:
    return load_config(
        {
            "backends": {"default": {"type": "local", "root": str(tmp_path / "data")}},
            "buckets": {"default": {"backend": "default"}},
            "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
        }
    )


def _cut_patch(port: int, path: str, offset: int, sent: bytes, pause: float) -> Awaitable[None]:
    """A PATCH announcing 1 GiB whose client vanishes after ``sent``."""
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: {OCTET['Content-Type']}\r\n"
        f"Content-Length: {1 << 30}\r\n"
    )
    return cut_request(port, head, sent, pause)


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
            # creation with upload
            r = await client.post(
                "/files/", data=sent, headers={**TUS, **OCTET, "Upload-Length": str(1 << 30)}
            )
            assert r.status == 201
            # the IETF draft (interop version 7): created with bytes, appends cut
            ietf = {"Upload-Draft-Interop-Version": "7", "Upload-Complete": "?0"}
            r = await client.post("/files/", data=sent, headers=ietf)
            assert r.status == 201, await r.text()
            path = URL(r.headers["Location"]).path
            for pause in (0, 0.1):
                r = await client.head(path, headers=ietf)
                head = (
                    f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Upload-Draft-Interop-Version: 7\r\nUpload-Complete: ?0\r\n"
                    f"Upload-Offset: {r.headers['Upload-Offset']}\r\n"
                    f"Content-Type: application/partial-upload\r\nContent-Length: {1 << 30}\r\n"
                )
                await cut_request(port, head, sent, pause)
            r = await client.head(path, headers=ietf)
            assert r.status == 204

    caught = left_in_cycles(main)
    assert not caught, f"left in reference cycles: {caught}"
