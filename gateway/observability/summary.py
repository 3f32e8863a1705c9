"""What start-up and shutdown log: one summary line each, so an operator
sees which configuration, stores and listeners are in use, and what a
stopping instance waited for."""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any

from backends.base import Backend
from gateway.config import GatewayConfig

log = logging.getLogger("gateway")

#: backend config fields that say where the bytes go (never secrets)
_WHERE = (
    "endpoint_url",
    "bucket",
    "region",
    "auth_url",
    "storage_url",
    "container",
    "segments_container",
    "trackers",
    "group",
    "root",
    # how the store checks the bytes (S3)
    "multipart_checksum",
    "content_md5",
)


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def version() -> str:
    try:
        return metadata.version("upload-gateway")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def describe_backend(backend: Backend) -> str:
    config: dict[str, Any] = backend.config.model_dump()
    parts = [f"{k}={config[k]}" for k in _WHERE if config.get(k) not in (None, "", [])]
    describe = getattr(backend, "describe", None)  # a backend may add its own facts
    if callable(describe):
        parts.append(str(describe()))
    return f"{backend.type_name}({', '.join(parts)})"


def _derived(trust_forwarded: bool) -> str:
    if trust_forwarded:
        return "derived per request (Forwarded / X-Forwarded-* / Host: trust_forwarded)"
    return "derived per request (Host; Forwarded headers ignored: trust_forwarded false)"


def startup_lines(
    config: GatewayConfig, config_path: str | None, backends: dict[str, Backend]
) -> list[str]:
    server = config.server
    lines = [
        f"upload-gateway {version()} starting: config {config_path or '(embedded default)'}, "
        f"listening on http://{server.host}:{server.port}, public URL "
        + (server.public_url or _derived(server.trust_forwarded))
    ]
    for name, bucket in config.buckets.items():
        backend = backends[bucket.backend]
        prefix = f" prefix {bucket.prefix!r}" if bucket.prefix else ""
        where = describe_backend(backend)
        uploads = (
            "anonymous tus uploads" if bucket.anonymous_upload else "uploads need a credential"
        )
        reads = "downloads by signed URL" if bucket.private else "open downloads"
        lines.append(
            f"bucket {name} -> backend {bucket.backend}: {where}{prefix}; {uploads}, {reads}"
        )
    state = config.state
    lines.append(
        f"state {state.type} ({state.path if state.type == 'sqlite' else _redact(state.url)}), "
        f"locks {config.locks.type}"
        + (f" ({_redact(config.locks.url)})" if config.locks.type == "redis" else "")
    )
    protocols = []
    if config.tus.enabled:
        protocols.append(f"tus and IETF at {config.tus.path} (bucket {config.tus.bucket})")
    if config.qiniu.enabled:
        protocols.append("qiniu")
    lines.append("protocols: " + (", ".join(protocols) or "none"))
    credentials = [f"upload tokens ({len(config.qiniu.keys)} key pair(s))"]
    if config.access.jwt is not None:
        credentials.append(f"JWT ({', '.join(config.access.jwt.algorithms)})")
    hooks = ", ".join(f"{'/'.join(h.events)} -> {h.url}" for h in config.hooks) or "none"
    lines.append(f"credentials: {', '.join(credentials)}; hooks: {hooks}")
    m = config.metrics
    where = f"port {m.port}" if m.port else "the main port"
    guard = "bearer token" if m.token else "no token"
    lines.append(f"metrics: /metrics on {where}, {guard}" if m.enabled else "metrics: off")
    return lines


def _redact(url: str) -> str:
    """A URL without its password (redis://:secret@host → redis://:***@host)."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def log_startup(
    config: GatewayConfig, config_path: str | None, backends: dict[str, Backend]
) -> None:
    # one record (one event for a log shipper), a line per fact
    log.info("%s", "\n  ".join(startup_lines(config, config_path, backends)))
    public = config.server.host not in _LOOPBACK
    if public and config.metrics.enabled and not config.metrics.port and not config.metrics.token:
        log.warning(
            "/metrics is open to whoever reaches port %d: set metrics.token or metrics.port",
            config.server.port,
        )


def log_shutdown_start(in_flight: int, connections: int, timeout: float) -> None:
    log.info(
        "shutting down: waiting up to %.0f s for %d request(s) in flight on %d connection(s)",
        timeout,
        in_flight,
        connections,
    )


def log_shutdown_end(in_flight: int, cleanups: int, hooks_queued: int) -> None:
    """After the listeners closed: what was cut off, what clean-up ran."""
    if in_flight:
        log.warning("shutdown: %d request(s) were cut off by the shutdown timeout", in_flight)
    if hooks_queued:
        log.warning("shutdown: %d queued webhook delivery(ies) dropped", hooks_queued)
    log.info("shutdown: waited for %d clean-up task(s); stopped", cleanups)
