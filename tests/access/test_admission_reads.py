"""Access admission costs a tus request no state read of its own: whether a
credential may touch an upload is judged on the record the core reads under
the upload's lock anyway (``check=``). Counted on the gateway app in this
process (aiohttp's test server, local disk, SQLite), the requests real."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from gateway.app import create_app
from gateway.app_keys import SERVICE
from gateway.config import load_config
from tests.access.support import AK, SK, auth, uptoken
from tests.core.test_multipart import Calls
from tests.tus.helpers import OCTET, TUS


def _config(tmp_path: Path) -> Any:
    return load_config(
        {
            "backends": {"default": {"type": "local", "root": str(tmp_path / "data")}},
            "buckets": {"default": {"backend": "default", "anonymous_upload": False}},
            "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
            "qiniu": {"keys": [{"access_key": AK, "secret_key": SK}]},
        }
    )


def test_one_state_read_per_request_with_a_credential(tmp_path: Path) -> None:
    async def main() -> None:
        app = create_app(_config(tmp_path), access_log=False)
        async with TestClient(TestServer(app)) as client:
            calls = Calls()
            calls.watch(app[SERVICE].ledger.state, "get")
            alice, eve = auth(uptoken(endUser="alice")), auth(uptoken(endUser="eve"))
            r = await client.post("/files/", headers={**TUS, **alice, "Upload-Length": "6"})
            assert r.status == 201
            url = URL(r.headers["Location"]).path
            calls.take()
            patch = {**TUS, **OCTET, **alice, "Upload-Offset": "0"}
            r = await client.patch(url, data=b"abc", headers=patch)
            assert r.status == 204
            assert calls.take() == {"get": 1}
            r = await client.head(url, headers={**TUS, **alice})
            assert (r.status, r.headers["Upload-Offset"]) == (200, "3")
            assert calls.take() == {"get": 1}
            # refused on that same read: another user learns nothing
            r = await client.head(url, headers={**TUS, **eve})
            assert r.status == 404
            r = await client.patch(url, data=b"def", headers={**patch, **eve, "Upload-Offset": "3"})
            assert r.status == 404
            r = await client.delete(url, headers={**TUS, **eve})
            assert r.status == 404
            assert calls.take() == {"get": 3}
            r = await client.delete(url, headers={**TUS, **alice})
            assert r.status == 204
            assert calls.take() == {"get": 1}

    asyncio.run(main())
