"""The middleware every request passes: its id, its metrics, its access log
line, and an ERROR line with the cause of every 5xx.

* ``X-Request-Id``: the client's (if it looks like an id) or a new one; on
  every answer, and in ``context.CURRENT`` for every log line the request
  causes (tasks it starts inherit it).
* The answer is sent here (``prepare`` + ``write_eof``), so the duration,
  the bytes out and the access log line describe the whole exchange; after
  a 408 the connection is closed at once.
* The protocol label comes from the module of the route's handler
  (``gateway.protocols.<name>``, ``gateway.objects``, this package = ops).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from gateway import rejection_logs  # a module: it imports gateway.observability back
from gateway.observability import context
from gateway.observability.metrics import METHODS, OTHER, PROTOCOLS, Metrics, bounded

access_log = logging.getLogger("gateway.access")
log = logging.getLogger(__name__)

REQUEST_ID = "X-Request-Id"
#: query parameters whose values never reach a log
_SECRET_PARAM = re.compile(
    r"token|sig|signature|secret|password|credential|auth|key|x-amz-", re.IGNORECASE
)
#: protocols whose POST / PUT / PATCH carry an upload's bytes
_UPLOAD_PROTOCOLS = frozenset({"tus", "qiniu", "ietf"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_MAX_CAUSES = 4  # links of an exception chain in one 5xx line

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def redacted_path(request: web.Request) -> str:
    """The path and query, with the values of secret-looking parameters
    (tokens, signatures, keys) replaced by ``***``."""
    path = request.raw_path.split("?", 1)[0]
    if not request.query_string:
        return path
    pairs = [
        (k, "***" if _SECRET_PARAM.search(k) else v)
        for k, v in parse_qsl(request.query_string, keep_blank_values=True)
    ]
    return f"{path}?{urlencode(pairs)}"


def describe_failure(exc: BaseException) -> str:
    """``Type: message`` for ``exc`` and each of its causes."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < _MAX_CAUSES:
        parts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return " <- ".join(parts)


def server_failure(status: int) -> bool:
    """A 5xx; Qiniu's 6xx/7xx (no such file or upload, file exists, no such
    bucket, invalid ctx) answer what a client asked for, like 4xx."""
    return 500 <= status < 600


def body_bytes(response: web.StreamResponse) -> int:
    """Bytes of the body sent (aiohttp counts the status line and headers too)."""
    sent = response.body_length
    if not sent:
        return 0
    head = len(f"HTTP/1.1 {response.status} {response.reason}\r\n") + 2
    head += sum(len(k) + len(v) + 4 for k, v in response.headers.items())
    return max(0, sent - head)


class Observer:
    """Per-application state of the middleware."""

    def __init__(self, metrics: Metrics, access_log_on: bool = True, count: bool = True) -> None:
        self.metrics = metrics
        self.access_log_on = access_log_on
        #: False when metrics are off: ids and logs only
        self.count = count
        #: transports of the connections requests came on (closed ones drop out)
        self._transports: weakref.WeakSet[Any] = weakref.WeakSet()
        self.in_flight = 0
        metrics.connections_open.set_function(self.open_connections)

    def open_connections(self) -> int:
        return sum(1 for t in list(self._transports) if not t.is_closing())

    @staticmethod
    def protocol_of(request: web.Request) -> str:
        module = getattr(request.match_info.handler, "__module__", None) or ""
        if module.startswith("gateway.protocols."):
            return bounded(module.split(".")[2], PROTOCOLS)
        if module == "gateway.objects":
            return "objects"
        if module.startswith("gateway.observability"):
            return "ops"
        return OTHER

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        if request.transport is not None:
            self._transports.add(request.transport)
        protocol = self.protocol_of(request)
        info = context.RequestInfo(
            context.request_id_from(request.headers.get(REQUEST_ID)), protocol
        )
        token = context.CURRENT.set(info)
        carries_upload = (
            self.count and protocol in _UPLOAD_PROTOCOLS and request.method in _BODY_METHODS
        )
        self.in_flight += 1
        if carries_upload:
            self.metrics.uploads_in_progress.inc()
        response: web.StreamResponse | None = None
        raised: web.HTTPException | None = None
        try:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = raised = exc
            except Exception as exc:
                # not rendered by a protocol: a bug; the client gets a plain 500
                context.note_failure(exc)
                log.exception("unhandled error")
                response = web.Response(status=500, text="internal error\n")
            if not response.prepared:
                response.headers[REQUEST_ID] = info.id
            with contextlib.suppress(ConnectionError):  # aiohttp closes the connection
                await response.prepare(request)
                await response.write_eof()
            rejection_logs.remember_request(request.content.exception(), info.id)
            if response.status == 408:
                # a stalled body: close once the answer is flushed, instead of
                # aiohttp lingering up to 10 s for the rest nobody will read
                request.protocol.force_close()
            if raised is not None:
                raise raised
            return response
        finally:
            self.in_flight -= 1
            if carries_upload:
                self.metrics.uploads_in_progress.dec()
            self._record(request, response, info, time.perf_counter() - start)
            context.CURRENT.reset(token)

    def _count(
        self,
        method: str,
        info: context.RequestInfo,
        status: int,
        seconds: float,
        bytes_in: int,
        bytes_out: int,
    ) -> None:
        m = self.metrics
        method = bounded(method, METHODS)
        m.child(m.requests, info.protocol, method, str(status)).inc()
        m.child(m.request_duration, info.protocol, method).observe(seconds)
        bucket = m.bucket(info.bucket)
        if bytes_in:
            m.child(m.bytes_received, info.protocol, bucket).inc(bytes_in)
        if bytes_out:
            m.child(m.bytes_served, info.protocol, bucket).inc(bytes_out)
        if server_failure(status) and info.upload_id is not None:
            m.upload_event("failed", info.protocol, info.bucket)

    def _record(
        self,
        request: web.Request,
        response: web.StreamResponse | None,
        info: context.RequestInfo,
        seconds: float,
    ) -> None:
        status = response.status if response is not None else 499  # the client went away
        bytes_in = request.content.total_bytes
        bytes_out = body_bytes(response) if response is not None else 0
        if self.count:
            self._count(request.method, info, status, seconds, bytes_in, bytes_out)
        if server_failure(status):
            cause = describe_failure(info.failure) if info.failure else "no cause recorded"
            log.error("%s %s answered %d: %s", request.method, request.path, status, cause)
        if self.access_log_on:
            path = redacted_path(request)
            ms = round(seconds * 1000, 1)
            access_log.info(
                '%s "%s %s" %d in=%d out=%d %.1fms',
                request.remote or "-",
                request.method,
                path,
                status,
                bytes_in,
                bytes_out,
                ms,
                extra={
                    "method": request.method,
                    "path": path,
                    "status": status,
                    "bytes_in": bytes_in,
                    "bytes_out": bytes_out,
                    "duration_ms": ms,
                },
            )
