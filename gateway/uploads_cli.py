"""``upload-gateway uploads``: the unfinished uploads in the state store
(SQLite or Redis, so a whole cluster's), and ending one by hand.

    upload-gateway uploads -c config.yaml [list] [--limit N] [--json]
    upload-gateway uploads -c config.yaml expire ID
    upload-gateway uploads -c config.yaml terminate ID

``expire`` does what the sweeper does when an upload's time is up (its
bytes are deleted, its id answers 410); ``terminate`` what a tus DELETE
does (the same, plus the ``post-terminate`` webhook). Both refuse an upload
that is already finished: they never delete an object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from gateway.config import GatewayConfig
from gateway.core.errors import UploadError
from gateway.core.records import Status, UploadRecord
from gateway.core.service import UploadService

_HOOK_WAIT = 30.0  # longest ``terminate`` waits for its webhook to be delivered
_UNFINISHED = (Status.ACTIVE, Status.COMPLETE)


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def row(record: UploadRecord, now: float) -> dict[str, Any]:
    return {
        "id": record.id,
        "protocol": record.protocol,
        "kind": record.kind.value,
        "status": record.status.value,
        "bucket": record.bucket,
        "key": record.key,
        "offset": record.offset,
        "size": record.length,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "expires_at": record.expires_at,
        "age": now - record.created_at,
        "idle": now - record.updated_at,
    }


def table(records: list[UploadRecord], now: float) -> str:
    header = ("ID", "PROTOCOL", "KIND", "BUCKET", "KEY", "OFFSET/SIZE", "AGE", "LAST WRITE")
    rows = [header]
    for r in records:
        size = "?" if r.length is None else str(r.length)
        rows.append(
            (
                r.id,
                r.protocol,
                r.kind.value,
                r.bucket,
                "-" if r.key is None else r.key,
                f"{r.offset}/{size}",
                _ago(now - r.created_at),
                _ago(now - r.updated_at) + " ago",
            )
        )
    widths = [max(len(str(c[i])) for c in rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
             for cells in rows]  # fmt: skip
    return "\n".join(lines)


async def _with_service(config: GatewayConfig, work: Callable[[UploadService], Any]) -> int:
    from gateway.app import close_service, open_service

    service = await open_service(config)
    try:
        result: int = await work(service)
        return result
    finally:
        await close_service(service)


async def _list(service: UploadService, limit: int, as_json: bool) -> int:
    records = await service.state.unfinished(limit)
    now = time.time()
    if as_json:
        for r in records:
            print(json.dumps(row(r, now)))
    else:
        print(table(records, now))
        if len(records) == limit:
            print(f"(the first {limit}, longest idle first; --limit for more)")
    return 0


async def _unfinished(service: UploadService, upload_id: str) -> UploadRecord | None:
    record = await service.state.get(upload_id)
    if record is None:
        print(f"no upload {upload_id}", file=sys.stderr)
        return None
    if record.status not in _UNFINISHED:
        print(f"upload {upload_id} is {record.status.value}: not touched", file=sys.stderr)
        return None
    return record


async def _expire(service: UploadService, upload_id: str) -> int:
    if await _unfinished(service, upload_id) is None:
        return 1

    async with service.locks.hold(upload_id):
        record = await service.state.get(upload_id)
        if record is not None and record.status in _UNFINISHED:
            record.expires_at = time.time() - 1  # due now: the sweeper's own path ends it
            await service.ledger.save(record)
    await service.expire(upload_id)
    record = await service.state.get(upload_id)
    if record is None or record.status is not Status.EXPIRED:
        print(f"upload {upload_id} was not expired (it changed meanwhile)", file=sys.stderr)
        return 1
    print(f"expired {upload_id}")
    return 0


async def _terminate(service: UploadService, upload_id: str) -> int:
    if await _unfinished(service, upload_id) is None:
        return 1
    await service.terminate(upload_id)
    deadline = time.monotonic() + _HOOK_WAIT
    while sum(service.events.pending.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    print(f"terminated {upload_id}")
    return 0


def run(args: argparse.Namespace, load: Callable[[str | None], GatewayConfig]) -> int:
    config = load(args.config)
    action = args.action or "list"
    if action != "list" and not args.id:
        print(f"uploads {action} needs an upload id", file=sys.stderr)
        return 2

    async def work(service: UploadService) -> int:
        if action == "list":
            return await _list(service, args.limit, args.json)
        if action == "expire":
            return await _expire(service, args.id)
        return await _terminate(service, args.id)

    try:
        return asyncio.run(_with_service(config, work))
    except UploadError as exc:
        print(f"uploads {action}: {exc.message}", file=sys.stderr)
        return 1


def add_uploads_command(
    subparsers: Any, load: Callable[[str | None], GatewayConfig]
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "uploads", help="list unfinished uploads, or expire / terminate one"
    )
    p.add_argument("-c", "--config", help="config.yaml (default: the embedded default)")
    p.add_argument("action", nargs="?", choices=("list", "expire", "terminate"))
    p.add_argument("id", nargs="?", help="the upload id (expire, terminate)")
    p.add_argument("--limit", type=int, default=100, help="list at most this many (default 100)")
    p.add_argument("--json", action="store_true", help="one JSON object per upload")
    p.set_defaults(func=lambda args: run(args, load))
    return p
