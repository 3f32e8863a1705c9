"""Observability: Prometheus metrics, request ids on every log line, the
access log, ``/readyz`` and the start-up / shutdown summary.

* ``setup(app, config)`` mounts the middleware and the ops endpoints, and
  the separate ``/metrics`` listener when ``metrics.port`` is set.
* ``instrument(...)`` wraps the state store and the locks and gives the
  backends their telemetry sink (``open_service`` calls it).
* ``watch(service, metrics)`` counts upload events and webhook deliveries.

Modules: ``context`` (the current request), ``logs`` (text / JSON lines),
``metrics`` (every metric), ``middleware``, ``observed`` (state and locks),
``endpoints``, ``summary`` (what start-up and shutdown log).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from backends.telemetry import Telemetry
from gateway.access.hooks import SyncHooks
from gateway.app_keys import CONFIG
from gateway.config import GatewayConfig
from gateway.core.events import Events
from gateway.core.locks import LockManager
from gateway.core.records import UploadRecord
from gateway.core.state.base import StateStore
from gateway.observability import endpoints
from gateway.observability.keys import METRICS, OBSERVER
from gateway.observability.metrics import Metrics, PrometheusTelemetry
from gateway.observability.middleware import Observer
from gateway.observability.observed import ObservedLocks, ObservedState

log = logging.getLogger(__name__)

#: core event → the uploads_*_total counter it moves
_UPLOAD_EVENTS = {
    "post-create": "created",
    "post-finish": "finished",
    "post-terminate": "terminated",
    "expired": "expired",
    "instant": "instant",  # completed at creation by a copy (also "finished")
}
#: the core's digest events → the digest_*_total counter they move
_DIGEST_EVENTS = {"digest-mismatch": "mismatches", "digest-reread": "rereads"}
_HOOK_EVENTS = ("post-create", "post-finish", "post-terminate")


def setup(app: web.Application, config: GatewayConfig, *, access_log: bool = True) -> Metrics:
    metrics = Metrics(buckets=config.buckets, backends=config.backends)
    observer = Observer(metrics, access_log_on=access_log, count=config.metrics.enabled)
    app[METRICS] = metrics
    app[OBSERVER] = observer
    app.middlewares.insert(0, observer.middleware)  # outermost: every other sees the id
    app.router.add_get("/healthz", endpoints.healthz)
    app.router.add_get("/readyz", endpoints.readyz)
    if config.metrics.enabled:
        if config.metrics.port:
            app.cleanup_ctx.append(_metrics_listener)
        else:
            app.router.add_get("/metrics", endpoints.metrics)
    return metrics


async def _metrics_listener(app: web.Application) -> AsyncIterator[None]:
    """``/metrics`` on its own port, sharing the application's registry."""
    config = app[CONFIG]
    side = web.Application()
    side[CONFIG] = config
    side[METRICS] = app[METRICS]
    side.router.add_get("/metrics", endpoints.metrics)
    runner = web.AppRunner(side, access_log=None)
    await runner.setup()
    host = config.metrics.host or config.server.host
    site = web.TCPSite(runner, host, config.metrics.port)
    await site.start()
    log.info("metrics at http://%s:%d/metrics", host, config.metrics.port)
    try:
        yield
    finally:
        await runner.cleanup()


def instrument(
    metrics: Metrics, config: GatewayConfig, state: StateStore, locks: LockManager
) -> tuple[StateStore, LockManager, Telemetry]:
    """The state store and locks wrapped for metrics, and the backends' sink."""
    return (
        ObservedState(state, metrics, config.state.type),
        ObservedLocks(locks, metrics),
        PrometheusTelemetry(metrics),
    )


def _count_hook_calls(metrics: Metrics) -> Callable[[str, bool], None]:
    def on_attempt(event: str, ok: bool) -> None:
        metrics.hook_invocations.labels(event).inc()
        if not ok:
            metrics.hook_errors.labels(event).inc()

    return on_attempt


def watch_sync_hooks(hooks: SyncHooks, metrics: Metrics) -> None:
    """Count the pre-* hook calls (a refusal is an answer, not an error)."""
    hooks.on_attempt = _count_hook_calls(metrics)


def watch(events: Events, metrics: Metrics) -> None:
    """Count upload events and webhook deliveries."""

    def on_event(event: str, record: UploadRecord) -> None:
        counter = _UPLOAD_EVENTS.get(event)
        if counter is not None:
            metrics.upload_event(counter, record.protocol, record.bucket)
        elif event in _DIGEST_EVENTS:
            metrics.digest_event(_DIGEST_EVENTS[event], record.protocol, record.bucket)

    events.listeners.append(on_event)
    events.on_attempt = _count_hook_calls(metrics)
    for event in _HOOK_EVENTS:
        metrics.webhook_queue_depth.labels(event).set_function(
            lambda event=event: float(events.pending[event])  # type: ignore[misc]
        )
