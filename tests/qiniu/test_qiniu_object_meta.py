"""What the object keeps besides its bytes, on every backend target: the
``mimeType`` as its content type (a GET of the returned URL answers with it)
and the ``deleteAfterDays`` lifetime — Swift's own ``X-Delete-At``, else the
gateway's sweeper deletes the object when due, but never a newer upload at
the same key."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import qiniu
import requests
from qiniu import UploadProgressRecorder

from gateway.app import close_service, open_service
from gateway.config import load_config
from gateway.core.expiry import sweep_once
from gateway.core.records import Status, UploadRecord
from tests.qiniu.harness import BUCKET, MiB, region, sha256, token
from tests.support.targets import SwiftTarget, Target
from testservers.gateway import GatewayProcess

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
DAY = 86400


def _ok(ret: Any, info: Any) -> dict[str, Any]:
    assert info.status_code == 200, info
    assert isinstance(ret, dict), info
    return ret


def _get(url: str) -> requests.Response:
    resp = requests.get(url, timeout=60, proxies={"http": "", "https": ""})
    return resp


def test_declared_mime_type_is_served(qgw: GatewayProcess, target: Target) -> None:
    body = '{"key":$(key),"mimeType":$(mimeType),"url":$(url)}'
    data = b"plain words, not a registered type"
    ret = _ok(
        *qiniu.put_data(
            token(returnBody=body),
            "meta/declared.dat",
            data,
            mime_type="text/x-gateway-test",
            regions=[region(qgw)],
        )
    )
    assert ret["mimeType"] == "text/x-gateway-test"
    resp = _get(ret["url"])
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/x-gateway-test")
    assert resp.content == data


def test_detected_mime_type_is_served(qgw: GatewayProcess, target: Target) -> None:
    # declared as text, but detectMime makes the content decide
    ret = _ok(
        *qiniu.put_data(
            token(detectMime=1, returnBody='{"url":$(url),"mimeType":$(mimeType)}'),
            "meta/picture",
            PNG,
            mime_type="text/plain",
            regions=[region(qgw)],
        )
    )
    assert ret["mimeType"] == "image/png"
    resp = _get(ret["url"])
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_resumable_mime_type_is_served(
    qgw: GatewayProcess,
    target: Target,
    tmp_path: Path,
    recorder: UploadProgressRecorder,
    version: str,
) -> None:
    path = tmp_path / "video.bin"
    data = os.urandom(9 * MiB + 100)
    path.write_bytes(data)
    key = f"meta/resumable-{version}"
    ret = _ok(
        *qiniu.put_file_v2(
            token(returnBody='{"url":$(url),"mimeType":$(mimeType)}'),
            key,
            str(path),
            mime_type="video/x-gateway-test",
            version=version,
            regions=[region(qgw)],
            upload_progress_recorder=recorder,
        )
    )
    assert ret["mimeType"] == "video/x-gateway-test"
    resp = _get(ret["url"])
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "video/x-gateway-test"
    assert sha256(resp.content) == sha256(data)


def test_mime_type_survives_a_restart(qgw: GatewayProcess, target: Target) -> None:
    ret = _ok(
        *qiniu.put_data(
            token(returnBody='{"url":$(url)}'),
            "meta/restart.dat",
            b"abc",
            mime_type="application/x-restart-test",
            regions=[region(qgw)],
        )
    )
    qgw.stop()
    qgw.start()  # on the same port: the URL stays valid
    resp = _get(ret["url"])
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/x-restart-test"


# -- deleteAfterDays ----------------------------------------------------------------


def _upload(gw: GatewayProcess, key: str, data: bytes, **policy: Any) -> dict[str, Any]:
    body = '{"key":$(key),"url":$(url)}'
    return _ok(
        *qiniu.put_data(token(key, returnBody=body, **policy), key, data, regions=[region(gw)])
    )


def _finished_records(gw: GatewayProcess, key: str) -> list[UploadRecord]:
    """The gateway's records of the objects stored at ``key`` (its SQLite state)."""
    with sqlite3.connect(gw.workdir / "state.db") as db:
        rows = db.execute("SELECT data FROM uploads").fetchall()
    records = [UploadRecord.from_json(r[0]) for r in rows]
    return [r for r in records if r.bucket == BUCKET and r.key == key]


def _sweep_days_later(gw: GatewayProcess, record_id: str, days: float) -> None:
    """One sweeper pass ``days`` from now, as if they had passed: a service
    over the gateway's own state and store, with its clock moved ahead."""
    config = load_config(
        {**gw.config, "state": {"type": "sqlite", "path": str(gw.workdir / "state.db")}}
    )

    async def sweep() -> UploadRecord | None:
        service = await open_service(config)
        try:
            service.ledger.clock = lambda: time.time() + days * DAY
            await sweep_once(service)
            return await service.state.get(record_id)
        finally:
            await close_service(service)

    swept = asyncio.run(sweep())
    assert swept is None or swept.status is Status.EXPIRED


def _swift_delete_at(gw: GatewayProcess, target: Target, key: str) -> str | None:
    assert isinstance(target, SwiftTarget)
    # the gateway's own container: target.containers names the latest one issued, and this
    # session-wide gateway was configured before the suites that came after it
    container = gw.config["backends"]["default"]["container"]
    resp = target.account.request("HEAD", f"{container}/ph/{key}")
    assert resp.status_code == 200, resp.status_code
    return resp.headers.get("X-Delete-At")


@pytest.mark.parametrize("size", [3000, 9 * MiB + 1])
def test_delete_after_days(qgw: GatewayProcess, target: Target, size: int) -> None:
    """A small form file (held, written whole: on Swift one plain object) and
    one above ``form_buffer`` (streamed: on Swift an SLO)."""
    key = f"expiring/{target.name}-{size}.txt"
    data = os.urandom(size)
    started = time.time()
    ret = _upload(qgw, key, data, deleteAfterDays=2)
    assert _get(ret["url"]).content == data
    if isinstance(target, SwiftTarget):  # Swift deletes it itself
        delete_at = _swift_delete_at(qgw, target, key)
        assert delete_at is not None
        assert started + 2 * DAY - 5 <= int(delete_at) <= time.time() + 2 * DAY + 5
        container = qgw.config["backends"]["default"]["container"]
        pieces = target.account.segments_of(container, f"ph/{key}")
        assert bool(pieces) == (size > MiB), pieces  # an SLO only above form_buffer
        for seg_container, name, _ in pieces:
            head = target.account.request("HEAD", f"{seg_container}/{name}")
            assert head.headers.get("X-Delete-At") == delete_at
        return
    [record] = [r for r in _finished_records(qgw, key) if r.status is Status.FINISHED]
    assert record.expires_at is not None
    assert started + 2 * DAY - 5 <= record.expires_at <= time.time() + 2 * DAY + 5
    _sweep_days_later(qgw, record.id, 2.01)
    assert _get(ret["url"]).status_code == 404


def test_delete_after_days_spares_a_newer_upload(qgw: GatewayProcess, target: Target) -> None:
    key = f"replaced/{target.name}.txt"
    _upload(qgw, key, b"old, to expire", deleteAfterDays=1)
    old = [r for r in _finished_records(qgw, key) if r.status is Status.FINISHED]
    newer = os.urandom(2000)
    ret = _upload(qgw, key, newer)  # same key, no lifetime
    if isinstance(target, SwiftTarget):
        assert _swift_delete_at(qgw, target, key) is None
    else:
        [record] = old
        _sweep_days_later(qgw, record.id, 1.01)
    resp = _get(ret["url"])
    assert resp.status_code == 200
    assert resp.content == newer
