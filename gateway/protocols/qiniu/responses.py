"""What every Qiniu response carries, and how errors are rendered.

* ``X-Reqid`` and ``X-Log`` on every response — errors and preflights too
  (Java counts a response as OK only with both 200 and ``X-Reqid``).
* CORS for the browser SDK (preflights ask for ``Authorization`` and
  ``Content-MD5``).
* Errors as ``status`` + ``{"error": message}`` JSON; core errors are mapped
  onto Qiniu's catalogue here, once (``from_core``); a 503 carries
  ``Retry-After`` (a store down, the memory budget in use, an upload busy).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from gateway import core
from gateway.app_keys import CONFIG
from gateway.observability.context import current_id, note_failure
from gateway.protocols.bodies import malformed_reason

from .errors import (
    BAD_REQUEST,
    CRC32_MISMATCH,
    FORBIDDEN,
    METHOD_NOT_ALLOWED,
    NO_SUCH_FILE,
    NO_SUCH_UPLOAD,
    NOT_FOUND,
    REQUEST_TIMEOUT,
    SERVER_ERROR,
    SERVICE_UNAVAILABLE,
    TOO_LARGE,
    ErrorKind,
    QiniuError,
)

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

X_LOG = "X-Log"
X_REQID = "X-Reqid"
ALLOW_HEADERS = ("Authorization", "Content-Type", "Content-MD5")
ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
EXPOSE_HEADERS = f"{X_REQID}, {X_LOG}"


def json_response(
    data: Any, status: int = 200, content_type: str = "application/json"
) -> web.Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return raw_json_response(body.encode(), status, content_type)


def raw_json_response(
    body: bytes, status: int = 200, content_type: str = "application/json"
) -> web.Response:
    return web.Response(body=body, status=status, headers={"Content-Type": content_type})


def error_response(error: QiniuError) -> web.Response:
    return json_response(error.body(), status=error.status)


def from_core(exc: core.UploadError, not_found: ErrorKind = NO_SUCH_FILE) -> QiniuError:
    """The Qiniu error for a core error. ``not_found`` is what a missing or
    gone upload means where it happened (701 for a ctx, 612 for an uploadId)."""
    if isinstance(exc, core.HookRejected):
        return QiniuError(exc.status, exc.message)
    if isinstance(exc, core.NoSuchSession):
        return NO_SUCH_UPLOAD.error()
    if isinstance(exc, core.UploadNotFound | core.UploadGone):
        return not_found.error()
    if isinstance(exc, core.TooLarge):
        return TOO_LARGE.error()
    if isinstance(exc, core.ChecksumMismatch):
        return CRC32_MISMATCH.error()
    if isinstance(exc, core.Forbidden):
        return FORBIDDEN.error(exc.message)
    if isinstance(exc, core.Locked | core.ServiceUnavailable):
        return SERVICE_UNAVAILABLE.error(core.client_message(exc, current_id()))
    if isinstance(exc, core.RequestTimeout):
        return REQUEST_TIMEOUT.error(exc.message)
    if isinstance(exc, core.BadRequest | core.NotReady | core.OffsetMismatch):
        return BAD_REQUEST.error(exc.message)
    return SERVER_ERROR.error()


def _cors(request: web.Request, response: web.StreamResponse) -> None:
    allow = request.app[CONFIG].server.cors_allow_origin
    origin = request.headers.get("Origin")
    response.headers["Access-Control-Allow-Origin"] = origin if origin and allow == "*" else allow
    response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    if origin:
        response.headers["Vary"] = "Origin"
    if request.method == "OPTIONS":
        requested = request.headers.get("Access-Control-Request-Headers", "")
        names = list(ALLOW_HEADERS)
        names += [h.strip() for h in requested.split(",") if h.strip() and h.strip() not in names]
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ", ".join(names)
        response.headers["Access-Control-Max-Age"] = "86400"


def _http_error(exc: web.HTTPException) -> QiniuError:
    if exc.status == 404:
        return NOT_FOUND.error()
    if exc.status == 405:
        return METHOD_NOT_ALLOWED.error()
    if exc.status == 413:
        return TOO_LARGE.error()
    return QiniuError(exc.status, exc.reason.lower())


def qiniu_handler(handler: Handler) -> Handler:
    """Wrap a handler: render errors, add ``X-Reqid``/``X-Log`` and CORS."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        # the request's id (X-Request-Id), as Qiniu clients expect it in X-Reqid
        reqid = current_id() or secrets.token_urlsafe(12)
        response: web.StreamResponse
        try:
            response = await handler(request)
        except (QiniuError, core.UploadError) as exc:
            if exc.status >= 500:
                note_failure(exc)
            response = error_response(exc if isinstance(exc, QiniuError) else from_core(exc))
            if isinstance(exc, core.ServiceUnavailable):
                response.headers["Retry-After"] = str(exc.retry_after)
            elif isinstance(exc, core.Locked):  # 503 here: busy for a moment
                response.headers["Retry-After"] = "1"
            if isinstance(exc, core.RequestTimeout):
                response.force_close()  # the rest of a stalled body is not waited for
        except RequestPayloadError as exc:
            response = error_response(BAD_REQUEST.error(malformed_reason(exc)))
        except web.HTTPException as exc:
            if exc.status < 400:
                response = web.Response(status=exc.status, headers=exc.headers)
            else:
                response = error_response(_http_error(exc))
        except Exception as exc:
            note_failure(exc)
            log.exception("qiniu %s %s failed", request.method, request.path)
            response = error_response(SERVER_ERROR.error())
        if not response.prepared:
            response.headers[X_REQID] = reqid
            response.headers[X_LOG] = f"UP;gw:{response.status}"
            _cors(request, response)
        return response

    return wrapped


async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=200)
