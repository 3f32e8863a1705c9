"""The gateway's Prometheus metrics (``prometheus-client``), one registry per
application, and the backends' telemetry sink writing into them.

Every label value is bounded: protocols, methods and outcomes are fixed
sets, buckets and backends come from the configuration (anything else is
``other``), statuses are HTTP codes, reasons are ``backends.telemetry``'s
category names. Never a key, an id or a user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase

from backends.telemetry import Telemetry

# no ``*_created`` series: Prometheus does not use them, they double the output
disable_created_metrics()  # type: ignore[no-untyped-call]

PROTOCOLS = frozenset({"tus", "qiniu", "objects", "ietf", "ops"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UPLOAD_EVENTS = ("created", "finished", "terminated", "expired", "failed", "instant")
OTHER = "other"

#: request durations: from a HEAD in a millisecond to a large PATCH in minutes
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_BACKEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LOCK_BUCKETS = (0.0001, 0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 20, 60)


def bounded(value: str | None, allowed: Iterable[str]) -> str:
    return value if value is not None and value in allowed else OTHER


class Metrics:
    """Every metric the gateway exports (names in the README's table)."""

    def __init__(self, buckets: Iterable[str] = (), backends: Iterable[str] = ()) -> None:
        self.buckets = frozenset(buckets)
        self.backends = frozenset(backends)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r = self.registry = CollectorRegistry(auto_describe=True)
        p = "upload_gateway_"
        self.requests = Counter(
            p + "requests", "HTTP requests answered", ["protocol", "method", "status"], registry=r
        )
        self.request_duration = Histogram(
            p + "request_duration_seconds",
            "Time from a request's arrival to the end of its answer",
            ["protocol", "method"],
            buckets=_REQUEST_BUCKETS,
            registry=r,
        )
        self.bytes_received = Counter(
            p + "bytes_received", "Request body bytes read", ["protocol", "bucket"], registry=r
        )
        self.bytes_served = Counter(
            p + "bytes_served", "Response body bytes sent", ["protocol", "bucket"], registry=r
        )
        self.uploads = {
            event: Counter(
                f"{p}uploads_{event}", f"Uploads {event}", ["protocol", "bucket"], registry=r
            )
            for event in UPLOAD_EVENTS
        }
        self.uploads_in_progress = Gauge(
            p + "uploads_in_progress",
            "Requests on this instance sending an upload's bytes right now",
            registry=r,
        )
        self.connections_open = Gauge(
            p + "connections_open", "Client connections open on this instance", registry=r
        )
        self.backend_duration = Histogram(
            p + "backend_request_duration_seconds",
            "Requests to the object stores",
            ["backend", "operation", "outcome"],
            buckets=_BACKEND_BUCKETS,
            registry=r,
        )
        self.backend_errors = Counter(
            p + "backend_errors",
            "Failed requests to the object stores",
            ["backend", "operation", "reason"],
            registry=r,
        )
        self.backend_fallbacks = Counter(
            p + "backend_fallbacks",
            "Times a backend did an operation another way because the store refused its usual one",
            ["backend", "operation", "reason"],
            registry=r,
        )
        self.lock_wait = Histogram(
            p + "lock_wait_seconds", "Time to acquire an upload's lock", buckets=_LOCK_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.lock_timeouts = Counter(
            p + "lock_timeouts", "Lock waits that gave up (423 Locked)", registry=r
        )
        self.memory_budget = Gauge(
            p + "memory_budget_bytes",
            "The part-buffer memory budget: used and limit",
            ["kind"],
            registry=r,
        )
        self.memory_budget_refusals = Counter(
            p + "memory_budget_refusals",
            "Requests refused with 503 after waiting for memory: new ones"
            " (uploads.memory_budget_wait), ones under way (memory_budget_wait_under_way)",
            ["request"],
            registry=r,
        )
        self.hook_invocations = Counter(
            p + "hook_invocations", "Webhook deliveries attempted", ["event"], registry=r
        )
        self.hook_errors = Counter(
            p + "hook_errors", "Webhook deliveries that failed", ["event"], registry=r
        )
        self.webhook_queue_depth = Gauge(
            p + "webhook_queue_depth", "Webhook deliveries waiting", ["event"], registry=r
        )
        self.ready = Gauge(
            p + "ready",
            "1 if the dependency answered the last /readyz check, else 0",
            ["dependency"],
            registry=r,
        )
        self.rejected_requests = Counter(
            p + "rejected_requests",
            "Malformed requests aiohttp refused before a handler ran (400), by cause",
            ["cause"],
            registry=r,
        )
        self.digest_mismatches = Counter(
            p + "digest_mismatches",
            "Complete uploads refused (460) because their bytes did not match Repr-Digest",
            ["protocol", "bucket"],
            registry=r,
        )
        self.digest_rereads = Counter(
            p + "digest_rereads",
            "Streams whose digest re-read stored bytes that were not hashed as they passed",
            ["protocol", "bucket"],
            registry=r,
        )
        self.state_errors = Counter(
            p + "state_errors", "Failed calls to the state store", ["store"], registry=r
        )

    # -- helpers for bounded labels -------------------------------------------------
    def child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: the hot path skips
        prometheus-client's label validation and lock (labels are bounded)."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def bucket(self, name: str | None) -> str:
        return bounded(name, self.buckets) if name is not None else "none"

    def upload_event(self, event: str, protocol: str, bucket: str | None) -> None:
        self.child(self.uploads[event], bounded(protocol, PROTOCOLS), self.bucket(bucket)).inc()

    def digest_event(self, counter: str, protocol: str, bucket: str | None) -> None:
        labels = (bounded(protocol, PROTOCOLS), self.bucket(bucket))
        metric = self.digest_mismatches if counter == "mismatches" else self.digest_rereads
        self.child(metric, *labels).inc()

    def watch_memory_budget(self, used: Callable[[], float], limit: float) -> None:
        self.memory_budget.labels("used").set_function(used)
        self.memory_budget.labels("limit").set(limit)


class PrometheusTelemetry(Telemetry):
    """The backends' sink (``backends.telemetry``) writing into ``Metrics``."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def _backend(self, name: str) -> str:
        return bounded(name, self.metrics.backends)

    def backend_request(self, backend: str, operation: str, seconds: float, outcome: str) -> None:
        m = self.metrics
        m.child(m.backend_duration, self._backend(backend), operation, outcome).observe(seconds)

    def backend_error(self, backend: str, operation: str, reason: str) -> None:
        self.metrics.backend_errors.labels(self._backend(backend), operation, reason).inc()

    def backend_fallback(self, backend: str, operation: str, reason: str) -> None:
        self.metrics.backend_fallbacks.labels(self._backend(backend), operation, reason).inc()
