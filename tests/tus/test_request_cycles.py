"""No tus (or IETF draft) request leaves its objects in reference cycles: the gateway
collects rarely (``ARCHITECTURE.md``, §1), and a request caught in one keeps
its body's unread bytes until a full collection. In-process (local disk), the
collector off while requests run; what a collection then finds unreachable
must hold nothing of the gateway's."""

from __future__ import annotations

import os
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
                offset = {"Upload-Offset": r.headers["Upload-Offset"]}
                await cut_request(port, "PATCH", path, {**TUS, **OCTET, **offset}, sent, pause)
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
                append = {
                    **ietf,
                    "Upload-Offset": r.headers["Upload-Offset"],
                    "Content-Type": "application/partial-upload",
                }
                await cut_request(port, "PATCH", path, append, sent, pause)
            r = await client.head(path, headers=ietf)
            assert r.status == 204

    caught = left_in_cycles(main)
    assert not caught, f"left in reference cycles: {caught}"
