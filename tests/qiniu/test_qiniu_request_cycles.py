"""No Qiniu request leaves the gateway's objects in reference cycles (form,
v1 and v2, whole and cut short by a vanishing client): in-process, local
disk, the collector off while they run (``tests/support/cycles.py``; tus:
``tests/tus/test_request_cycles.py``)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config import load_config
from tests.access.support import AK, SK, auth, uptoken
from tests.qiniu.test_qiniu_raw import multipart
from tests.support.cycles import cut_request, left_in_cycles

MiB = 1024 * 1024
_PAUSES = (0, 0.1)


def _config(tmp_path: Path) -> Any:
    return load_config(
        {
            "backends": {"default": {"type": "local", "root": str(tmp_path / "data")}},
            "buckets": {"default": {"backend": "default"}},
            "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
            "qiniu": {"enabled": True, "keys": [{"access_key": AK, "secret_key": SK}]},
        }
    )


def test_qiniu_requests_leave_nothing_in_cycles(tmp_path: Path) -> None:
    data = os.urandom(4 * MiB)
    token = auth(uptoken("default"))

    async def main() -> None:
        app = create_app(_config(tmp_path), access_log=False)
        async with TestClient(TestServer(app)) as client:
            port = client.port
            assert port is not None
            # form: whole, then cut inside the file
            body = multipart([("token", uptoken("default")), ("key", "c/form"), ("file", data)])
            form = {"Content-Type": "multipart/form-data; boundary=b0undary"}
            r = await client.post("/", data=body, headers=form)
            assert r.status == 200, await r.text()
            for pause in _PAUSES:
                cut = body[: 2 * MiB]
                await cut_request(port, "POST", "/", form, cut, pause, announced=len(body))
            # v1: a block whole, then cut
            r = await client.post(f"/mkblk/{len(data)}", data=data, headers=token)
            assert r.status == 200, await r.text()
            for pause in _PAUSES:
                mkblk = f"/mkblk/{len(data)}"
                await cut_request(port, "POST", mkblk, token, data[:MiB], pause, len(data))
            # v2: a part whole, then cut
            obj = base64.urlsafe_b64encode(b"c/v2").decode()
            r = await client.post(f"/buckets/default/objects/{obj}/uploads", headers=token)
            assert r.status == 200, await r.text()
            parts = f"/buckets/default/objects/{obj}/uploads/{(await r.json())['uploadId']}"
            r = await client.put(f"{parts}/1", data=data, headers=token)
            assert r.status == 200, await r.text()
            for number, pause in enumerate(_PAUSES, start=2):
                part = f"{parts}/{number}"
                await cut_request(port, "PUT", part, token, data[:MiB], pause, len(data))
            r = await client.get(parts, headers=token)  # the cut parts are over
            assert r.status == 200, await r.text()

    caught = left_in_cycles(main)
    assert not caught, f"left in reference cycles: {caught}"
