"""The ops endpoints: ``GET /metrics`` (Prometheus text format, behind
``metrics.token`` when one is configured) and ``GET /readyz`` / ``GET /healthz``.

``/readyz`` checks every dependency at once, each bounded by
``READY_TIMEOUT``, and answers JSON naming each one's status and latency::

    {"status": "ok", "checks": {"state": {"status": "ok", "latency_ms": 0.4},
     "locks": {...}, "backend:default": {"status": "error", "latency_ms": 2000.1,
     "error": "did not answer in 2.0 s"}}}

200 when all are ok, else 503. Each check also sets the gauge
``upload_gateway_ready{dependency}`` (for the alert rules).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.app_keys import CONFIG, SERVICE
from gateway.observability.keys import METRICS

READY_TIMEOUT = 2.0


def authorized(request: web.Request, token: str) -> bool:
    """True if no token is configured or the request carries ``Bearer <token>``."""
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token)


async def metrics(request: web.Request) -> web.Response:
    if not authorized(request, request.app[CONFIG].metrics.token):
        return web.Response(
            status=401,
            text="the metrics token is required\n",
            headers={"WWW-Authenticate": 'Bearer realm="upload-gateway ops"'},
        )
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check(probe: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    start = time.perf_counter()
    result: dict[str, Any] = {"status": "ok"}
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await probe()
    except TimeoutError:
        result = {"status": "error", "error": f"did not answer in {READY_TIMEOUT} s"}
    except Exception as exc:
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    result["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
    return result


async def readyz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    probes: dict[str, Callable[[], Awaitable[None]]] = {
        "state": service.state.ping,
        "locks": service.locks.ping,
    }
    for name, backend in service.backends.items():
        probes[f"backend:{name}"] = backend.ping
    results = await asyncio.gather(*(_check(p) for p in probes.values()))
    checks = dict(zip(probes, results, strict=True))
    ready = request.app[METRICS].ready
    for name, check in checks.items():
        ready.labels(name).set(1 if check["status"] == "ok" else 0)
    ok = all(c["status"] == "ok" for c in checks.values())
    return web.json_response(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )
