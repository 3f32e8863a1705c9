"""Records an earlier version wrote are read by this one
(``gateway/core/upgrades.py``): Qiniu v2 sessions and parts stored before
``core/multipart.py`` are listed, completed and aborted by the new code. The
old records are written as the old code wrote them (e7db6a6^:
``qiniu/sessions.py``, ``qiniu/v2.py``), on a real local store and both
state stores."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.core import multipart, upgrades
from gateway.core.errors import NoSuchSession
from gateway.core.multipart import is_session
from gateway.core.records import Kind, Status, UploadRecord, new_upload_id
from gateway.core.service import UploadService
from tests.core.services import run

#: a v2 session record as the old code stored it (no ``instance`` then)
OLD_SESSION = {
    "id": "5f1c",
    "protocol": "qiniu",
    "kind": "assembly",
    "bucket": "default",
    "key": "movie.mp4",
    "length": None,
    "offset": 0,
    "status": "active",
    "metadata": {},
    "concat": None,
    "parts": [],
    "created_at": 1764000000.0,
    "updated_at": 1764000100.0,
    "expires_at": 1764600000.0,
    "backend_state": {},
    "extra": {"qiniu": "v2", "maxPart": 2, "access": {"scope": "default"}},
    "version": 3,
}


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_the_mark_is_the_one_multipart_reads() -> None:
    assert upgrades.MULTIPART_MARK == multipart._MARK


def test_an_old_session_loads_as_a_session() -> None:
    record = UploadRecord.from_json(json.dumps(OLD_SESSION))
    assert is_session(record)
    assert record.extra == {"access": {"scope": "default"}, "core:multipart": "session"}
    assert (record.kind, record.status, record.version, record.instance) == (
        Kind.ASSEMBLY,
        Status.ACTIVE,
        3,
        "",
    )


def test_records_of_the_current_layout_and_other_protocols_are_left_alone() -> None:
    for extra in (
        {"qiniu": "v1"},  # a v1 block: unchanged since
        {"qiniu": "form"},
        {"core:multipart": "session", "qiniu": "v2"},  # already in the new layout
    ):
        data = {**OLD_SESSION, "extra": dict(extra)}
        assert UploadRecord.from_json(json.dumps(data)).extra == extra
    tus = {**OLD_SESSION, "protocol": "tus", "extra": {"qiniu": "v2"}}
    assert UploadRecord.from_json(json.dumps(tus)).extra == {"qiniu": "v2"}


def test_an_old_part_sealed_without_its_etag_stays_unlisted() -> None:
    part = {
        **OLD_SESSION,
        "id": "5f1c-1",
        "kind": "part",
        "key": None,
        "status": "complete",
        "extra": {"qiniu": "v2", "uploadId": "5f1c", "part": 1},
    }
    record = UploadRecord.from_json(json.dumps(part))
    assert record.extra == {"qiniu": "v2", "uploadId": "5f1c", "part": 1}
    assert multipart._part_of(record) is None


async def _old_part(
    service: UploadService, session_id: str, number: int, data: bytes, *, sealed: bool = True
) -> None:
    """Part ``number`` as the old ``v2.upload_part`` left it: a PART stream
    ``<session>-<n>`` written through the core, then annotated."""
    pid = f"{session_id}-{number}"
    old_mark = {"qiniu": "v2", "uploadId": session_id, "part": number}
    await service.create(
        protocol="qiniu",
        bucket="default",
        key=None,
        length=len(data),
        kind=Kind.PART,
        extra=dict(old_mark),
        upload_id=pid,
    )
    if not sealed:
        return
    await service.write(pid, 0, _one(data))
    record = await service.state.get(pid)
    assert record is not None and record.status is Status.COMPLETE
    record.extra = {
        **old_mark,
        "etag": hashlib.md5(data).hexdigest(),
        "sha1s": [hashlib.sha1(data).hexdigest()],
        "putTime": 1764000050,
    }
    if number == 1:
        record.extra["head"] = base64.b64encode(data[:16]).decode()
    await service.state.save(record)  # the old layout, as stored bytes


def _stored_extra(tmp_path: Path, upload_id: str) -> Any:
    """The record's ``extra`` as stored (not through ``from_json``): SQLite only."""
    db = sqlite3.connect(tmp_path / "state.db")
    try:
        row = db.execute("SELECT data FROM uploads WHERE id = ?", (upload_id,)).fetchone()
    finally:
        db.close()
    return json.loads(row[0])["extra"]


def test_an_old_session_is_listed_completed_and_its_parts_assembled(
    tmp_path: Path, state: dict[str, Any]
) -> None:
    one, two, three = b"1" * 70_000, b"2" * 50_000, b"3" * 123

    async def body(service: UploadService) -> None:
        mp = service.multipart
        sid = new_upload_id()
        now = time.time()
        session_record = UploadRecord(
            id=sid,
            protocol="qiniu",
            kind=Kind.ASSEMBLY,
            bucket="default",
            key="movie.mp4",
            length=None,
            created_at=now,
            updated_at=now,
            expires_at=now + 600,
            extra={"qiniu": "v2", "maxPart": 4},
        )
        await service.state.create(session_record)
        await _old_part(service, sid, 1, one)
        await _old_part(service, sid, 2, two)
        await _old_part(service, sid, 4, b"never finished", sealed=False)
        if state["type"] == "sqlite":  # the test really stored the old layout
            assert _stored_extra(tmp_path, sid) == {"qiniu": "v2", "maxPart": 4}
            assert "etag" in _stored_extra(tmp_path, f"{sid}-1")

        session = await mp.session(sid, "default", "qiniu")
        assert (session.key, session.bucket) == ("movie.mp4", "default")
        parts, more = await mp.list_parts(session)
        assert [(p.number, p.size, p.etag, p.put_time) for p in parts] == [
            (1, len(one), hashlib.md5(one).hexdigest(), 1764000050),
            (2, len(two), hashlib.md5(two).hexdigest(), 1764000050),
        ]
        assert not more
        # what the protocol kept with the part (the qetag's SHA-1s, the head)
        assert parts[0].info == {
            "sha1s": [hashlib.sha1(one).hexdigest()],
            "head": base64.b64encode(one[:16]).decode(),
        }
        # the new code puts part 3 beside the old ones, replaces the unsealed 4
        three_part = await mp.put_part(session, 3, _one(three), content_length=len(three))
        async with mp.completing(sid, "default", "qiniu") as held:
            await mp.complete(held, [*parts, three_part], "movie.mp4")
        got = b"".join([c async for c in service.read("default", "movie.mp4")])
        assert got == one + two + three
        with pytest.raises(NoSuchSession):
            await mp.session(sid, "default", "qiniu")

    run(tmp_path, state, body)


def test_an_old_session_is_aborted_with_its_parts(tmp_path: Path, state: dict[str, Any]) -> None:
    async def body(service: UploadService) -> None:
        sid = new_upload_id()
        now = time.time()
        await service.state.create(
            UploadRecord(
                id=sid,
                protocol="qiniu",
                kind=Kind.ASSEMBLY,
                bucket="default",
                key=None,
                length=None,
                created_at=now,
                updated_at=now,
                expires_at=now + 600,
                extra={"qiniu": "v2", "maxPart": 1},
            )
        )
        await _old_part(service, sid, 1, b"some bytes")
        await service.multipart.abort(sid, "default", "qiniu")
        record = await service.state.get(f"{sid}-1")
        assert record is not None and record.status is Status.TERMINATED
        assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]

    run(tmp_path, state, body)
