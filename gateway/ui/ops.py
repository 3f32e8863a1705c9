"""The ops view: ``/ui/ops`` (the page) and ``/ui/ops/snapshot`` (its data,
polled each second; ``Authorization: Bearer <ui.ops_token>``).

A snapshot holds a page of the unfinished uploads of every instance (from
the state store, so a Redis cluster shows them all, each with the instance
that last saved it; the most recently written first, ``PAGE`` records a
page, ``?after=<page.next>`` for the next), with the live bytes of bodies
this instance is receiving; recent
finishes with their URLs; per-backend store latency and errors from the
Prometheus metrics when they are there; readiness (the ``/readyz``
checks); and this instance's received bytes per second."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway.app_keys import SERVICE
from gateway.config import GatewayConfig
from gateway.core.multipart import is_session
from gateway.core.records import Kind, Status, UploadRecord
from gateway.core.state.base import Cursor
from gateway.urls import base_url

from .assets import SECURITY_HEADERS, asset, static_file
from .live import Live

log = logging.getLogger(__name__)

LIVE = web.AppKey("ui-live", Live)
#: unfinished records read per snapshot: a page of the list
PAGE = 100
_UNFINISHED = (Status.ACTIVE, Status.COMPLETE)
_MAX_CURSOR = 256


def setup(app: web.Application, config: GatewayConfig) -> None:
    token = config.ui.ops_token.encode()

    async def live_context(app: web.Application) -> AsyncIterator[None]:
        live = app[LIVE] = Live(app[SERVICE], config.ui.ops_recent)
        sampler = asyncio.get_running_loop().create_task(live.sample_forever())
        yield
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await live.close()

    async def page(request: web.Request) -> web.Response:
        return asset("ops.html")

    async def snapshot(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token):
            log.warning("ops view: refused a snapshot request from %s", request.remote)
            return web.json_response(
                {"error": "the ops view needs Authorization: Bearer <ui.ops_token>"},
                status=401,
                headers={**SECURITY_HEADERS, "WWW-Authenticate": "Bearer"},
            )
        try:
            after = parse_cursor(request.query.get("after"))
        except ValueError as exc:
            log.warning("ops view: a snapshot request with a bad cursor: %s", exc)
            return web.json_response({"error": str(exc)}, status=400, headers=SECURITY_HEADERS)
        body = await build_snapshot(request, after)
        return web.json_response(body, headers=SECURITY_HEADERS)

    app.cleanup_ctx.append(live_context)
    app.router.add_get("/ui/ops", page)
    app.router.add_get("/ui/ops/snapshot", snapshot)
    app.router.add_get("/ui/ops/static/{name}", static_file)


def parse_cursor(text: str | None) -> Cursor | None:
    """``<expires_at>:<id>`` (a snapshot's ``page.next``) as a cursor."""
    if not text:
        return None
    if len(text) > _MAX_CURSOR:
        raise ValueError(f"after: longer than {_MAX_CURSOR} characters")
    at, _, upload_id = text.partition(":")
    try:
        expires_at = float(at)
    except ValueError:
        raise ValueError("after: not <expires_at>:<id>") from None
    if not upload_id or not math.isfinite(expires_at):
        raise ValueError("after: not <expires_at>:<id>")
    return expires_at, upload_id


def cursor_text(record: UploadRecord) -> str:
    return f"{record.expires_at!r}:{record.id}"


async def build_snapshot(request: web.Request, after: Cursor | None = None) -> dict[str, Any]:
    service = request.app[SERVICE]
    live = request.app[LIVE]
    now = time.time()
    read = await service.state.unfinished(PAGE + 1, after=after, newest_first=True)
    page, more = read[:PAGE], len(read) > PAGE
    receiving = live.live_bytes()
    records = page
    if after is None:
        # the first page shows what this instance receives now, however long
        # ago its record was last saved (one long PATCH saves at its end)
        listed = {r.id for r in page}
        missing = [i for i in receiving if i not in listed]
        if missing:
            found = await service.state.get_many(missing)
            records = page + [r for r in found if r is not None and r.status in _UNFINISHED]
    sessions = {r.id: r for r in records if is_session(r)}
    parts: dict[str, list[UploadRecord]] = {sid: [] for sid in sessions}
    uploads = []
    for r in records:
        session_id = r.id.rsplit("-", 1)[0]
        if r.kind is Kind.PART and session_id in sessions:
            parts[session_id].append(r)
        elif r.kind is not Kind.ASSEMBLY:
            uploads.append(_upload(live, r, now, receiving))
    uploads += [_session(live, sessions[s], ps, now, receiving) for s, ps in parts.items()]
    live.forget_except({u["id"] for u in uploads})
    uploads.sort(key=lambda u: (not u["receiving"], u["idle"]))
    throughput, instances = await live.cluster_throughput()
    base = base_url(request, service.config.server)
    finished = await live.recent_finishes()
    for entry in finished:
        try:
            entry["url"] = await service.object_url(entry["bucket"], entry["key"], base)
        except Exception as exc:  # a store down: the row stays, without a link
            entry["url"] = None
            log.warning("ops view: no URL for %s/%s: %s", entry["bucket"], entry["key"], exc)
    return {
        "instance": service.ledger.instance,
        "now": now,
        "uploads": uploads,
        # this page: how many records it read, and the cursor of the next (older) one
        "page": {
            "records": len(page),
            "next": cursor_text(page[-1]) if more else None,
        },
        "finished": finished,
        "backends": backend_stats(request.app, list(service.backends)),
        "ready": await readiness(request),
        "throughput": throughput,
        "throughput_instances": instances,
    }


def _upload(
    live: Live, record: UploadRecord, now: float, receiving: dict[str, int]
) -> dict[str, Any]:
    held = max(record.offset, receiving.get(record.id, 0))
    return {
        "id": record.id,
        "protocol": record.protocol,
        "kind": record.kind.value,
        "bucket": record.bucket,
        "key": record.key,
        "bytes": held,
        "size": record.length,
        "rate": live.rate(record.id, now, held),
        "age": max(0.0, now - record.created_at),
        "idle": 0.0 if record.id in receiving else max(0.0, now - record.updated_at),
        "instance": record.instance or None,
        "receiving": record.id in receiving,
    }


def _session(
    live: Live,
    session: UploadRecord,
    parts: list[UploadRecord],
    now: float,
    receiving: dict[str, int],
) -> dict[str, Any]:
    """A multipart session (Qiniu v2) as one row: its parts' bytes together."""
    held = sum(max(p.offset, receiving.get(p.id, 0)) for p in parts)
    latest = max([session, *parts], key=lambda r: r.updated_at)
    active = any(p.id in receiving for p in parts)
    return {
        "id": session.id,
        "protocol": session.protocol,
        "kind": "session",
        "bucket": session.bucket,
        "key": session.key,
        "bytes": held,
        "size": None,
        "rate": live.rate(session.id, now, held),
        "age": max(0.0, now - session.created_at),
        "idle": 0.0 if active else max(0.0, now - latest.updated_at),
        "instance": latest.instance or None,
        "receiving": active,
        "parts": len(parts),
    }


def backend_stats(app: web.Application, names: list[str]) -> dict[str, Any]:
    """Per backend: store requests, their mean latency, errors — read from the
    Prometheus registry when the metrics are on (``available`` says so)."""
    sums: dict[str, dict[str, float]] = {
        n: {"requests": 0, "seconds": 0.0, "errors": 0} for n in names
    }
    registry = _registry(app)
    if registry is None:
        return {"available": False, "backends": {n: {} for n in names}}
    for family in registry.collect():
        for sample in family.samples:
            backend = sample.labels.get("backend")
            if backend not in sums:
                continue
            if sample.name == "upload_gateway_backend_request_duration_seconds_count":
                sums[backend]["requests"] += sample.value
            elif sample.name == "upload_gateway_backend_request_duration_seconds_sum":
                sums[backend]["seconds"] += sample.value
            elif sample.name == "upload_gateway_backend_errors_total":
                sums[backend]["errors"] += sample.value
    stats = {
        name: {
            "requests": int(s["requests"]),
            "mean_ms": round(1000 * s["seconds"] / s["requests"], 1) if s["requests"] else None,
            "errors": int(s["errors"]),
        }
        for name, s in sums.items()
    }
    return {"available": True, "backends": stats}


def _registry(app: web.Application) -> Any:
    from gateway.observability.keys import METRICS

    metrics = app.get(METRICS)
    return getattr(metrics, "registry", None)


async def readiness(request: web.Request) -> dict[str, Any]:
    """The ``/readyz`` answer, asked of its own handler (one definition of ready)."""
    for resource in request.app.router.resources():
        if resource.canonical == "/readyz":
            for route in resource:
                if route.method == "GET":
                    try:
                        response = await route.handler(request)
                    except web.HTTPException as exc:
                        response = exc
                    if isinstance(response, web.Response) and response.body is not None:
                        assert isinstance(response.body, bytes)
                        result: dict[str, Any] = json.loads(response.body)
                        return result
    return {"status": "unknown", "checks": {}}
