"""The aiohttp application: wires config → state, locks, backends, service,
sweeper, and mounts the protocol front-ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from backends.base import Backend, BackendContext
from backends.registry import backend_class
from backends.telemetry import NO_TELEMETRY
from gateway import objects, observability, rejection_logs
from gateway.access.gate import GATE, AccessGate
from gateway.app_keys import CONFIG, CONFIG_PATH, SERVICE
from gateway.config import GatewayConfig
from gateway.core.budget import Budget, request_scope
from gateway.core.events import Events
from gateway.core.expiry import run_sweeper
from gateway.core.ledger import Ledger
from gateway.core.locks import LockManager, MemoryLocks
from gateway.core.service import UploadService
from gateway.core.state.base import StateStore
from gateway.core.state.sqlite import SQLiteStateStore
from gateway.observability import summary
from gateway.observability.keys import METRICS, OBSERVER
from gateway.observability.metrics import Metrics

log = logging.getLogger(__name__)

#: how long a stopping instance waits for requests in flight
SHUTDOWN_TIMEOUT = 5.0


def make_state(config: GatewayConfig) -> StateStore:
    if config.state.type == "redis":
        from gateway.core.state.redis import RedisStateStore

        return RedisStateStore(config.state.url)
    return SQLiteStateStore(config.state.path)


def make_locks(config: GatewayConfig) -> LockManager:
    if config.locks.type == "redis":
        from gateway.core.redis_locks import RedisLocks

        return RedisLocks(config.locks.url, config.locks.acquire_timeout, config.locks.lease)
    return MemoryLocks(config.locks.acquire_timeout)


def make_backends(config: GatewayConfig, context: BackendContext) -> dict[str, Backend]:
    backends: dict[str, Backend] = {}
    for name in config.backends:
        typed = config.backend_config(name)
        backends[name] = backend_class(typed.type)(name, typed, context)
    return backends


async def open_service(config: GatewayConfig, metrics: Metrics | None = None) -> UploadService:
    """Open state, locks and backends; raise on any start-up failure. With
    ``metrics``, everything reports into them."""
    state = make_state(config)
    locks = make_locks(config)
    telemetry = NO_TELEMETRY
    if metrics is not None:
        state, locks, telemetry = observability.instrument(metrics, config, state, locks)
    await state.open()
    await locks.open()
    uploads = config.uploads
    budget = Budget(
        uploads.memory_budget, uploads.memory_budget_wait, uploads.memory_budget_wait_under_way
    )
    context = BackendContext(kv=state, budget=budget, telemetry=telemetry)
    backends = make_backends(config, context)
    for backend in backends.values():
        await backend.start()
    events = Events(config.hooks)
    if metrics is not None:
        metrics.watch_memory_budget(lambda: budget.used, budget.total)
        refusals = metrics.memory_budget_refusals
        budget.on_refused = lambda waiting: metrics.child(refusals, waiting).inc()
        observability.watch(events, metrics)
    return UploadService(Ledger(config, state, locks, backends, events))


async def close_service(service: UploadService) -> None:
    await service.settle()
    await service.events.close()
    for backend in service.backends.values():
        with contextlib.suppress(Exception):
            await backend.close()
    await service.locks.close()
    await service.state.close()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    service = await open_service(config, app[METRICS] if config.metrics.enabled else None)
    app[SERVICE] = service
    gate = app[GATE]
    if config.metrics.enabled:
        observability.watch_sync_hooks(gate.hooks, app[METRICS])
    if gate.hooks.configured("pre-finish"):
        service.ledger.approve = gate.pre_finish
    summary.log_startup(config, app[CONFIG_PATH], service.backends)
    sweeper = asyncio.get_running_loop().create_task(
        run_sweeper(service, config.uploads.sweep_interval)
    )
    yield
    sweeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
    summary.log_shutdown_end(
        app[OBSERVER].in_flight,
        len(service.ledger._after_answer),
        sum(service.events.pending.values()),
    )
    await close_service(service)
    await gate.hooks.close()


@web.middleware
async def _budget_scope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Memory taken by a request that already had some is continuing work
    (``gateway/core/budget.py``)."""
    with request_scope():
        return await handler(request)


async def _on_shutdown(app: web.Application) -> None:
    observer = app[OBSERVER]
    summary.log_shutdown_start(observer.in_flight, observer.open_connections(), SHUTDOWN_TIMEOUT)


def create_app(
    config: GatewayConfig, *, config_path: str | None = None, access_log: bool = True
) -> web.Application:
    app = web.Application(
        client_max_size=64 * 1024 * 1024,
        middlewares=[_budget_scope],
        # request bodies are stored as sent: a content coding is part of the
        # representation (the IETF drafts count offsets on the coded bytes,
        # and a coded stream resumed mid-way cannot be decoded per request)
        handler_args={"auto_decompress": False},
    )
    app[CONFIG] = config
    app[GATE] = gate = AccessGate(config)
    gate.warn_if_open()
    app[CONFIG_PATH] = config_path or ""
    metrics = observability.setup(app, config, access_log=access_log)
    rejection_logs.install(lambda cause: metrics.child(metrics.rejected_requests, cause).inc())
    app.on_shutdown.append(_on_shutdown)
    app.cleanup_ctx.append(_lifecycle)
    if config.ui.enabled or config.ui.ops_token:
        from gateway import ui

        ui.setup(app, config)  # before Qiniu's routes: its "*" on / would take GET /
    if config.tus.enabled:
        from gateway import http_trailers
        from gateway.protocols import tus

        http_trailers.install()
        tus.setup(app, config.tus.path)
    if config.qiniu.enabled:
        from gateway.protocols import qiniu

        qiniu.setup(app, config)
    objects.setup(app)
    return app
