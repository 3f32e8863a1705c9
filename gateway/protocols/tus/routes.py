"""tus routes: version check, method override, CORS, dispatch, error rendering."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from gateway.access.errors import AccessError
from gateway.access.gate import GATE
from gateway.app_keys import CONFIG, SERVICE
from gateway.core import (
    RETRY_LATER,
    BadRequest,
    RangeNotSatisfiable,
    RequestTimeout,
    ServiceUnavailable,
    UploadError,
    UploadNotFound,
    UploadRecord,
    client_message,
)
from gateway.observability.context import current_id, note_failure, set_protocol
from gateway.protocols import ietf
from gateway.protocols.bodies import malformed_reason
from gateway.protocols.ietf.limits import upload_limit
from gateway.protocols.ietf.versions import UNVERSIONED
from gateway.protocols.tus import creation, download, upload
from gateway.protocols.tus.context import TusContext
from gateway.protocols.tus.extensions import checksum_algorithms, extensions
from gateway.protocols.tus.headers import ALLOWED, EXPOSED, METHODS, TUS_VERSION

log = logging.getLogger(__name__)

Handler = Callable[[TusContext, str], Awaitable[web.StreamResponse]]

_UPLOAD_METHODS: dict[str, Handler] = {
    "HEAD": upload.head,
    "PATCH": upload.patch,
    "DELETE": upload.delete,
    "GET": download.get,
}


def _method(request: web.Request) -> str:
    override = request.headers.get("X-HTTP-Method-Override")
    if request.method == "POST" and override:
        return override.strip().upper()
    return request.method


def _cors(request: web.Request, response: web.StreamResponse, allow_origin: str) -> None:
    origin = request.headers.get("Origin")
    if not origin:
        return
    response.headers["Access-Control-Allow-Origin"] = (
        origin if allow_origin == "*" else allow_origin
    )
    response.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED)
    response.headers["Vary"] = "Origin"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = METHODS
        response.headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED)
        response.headers["Access-Control-Max-Age"] = "86400"


def _options(ctx: TusContext) -> web.Response:
    headers = {
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": ",".join(extensions(ctx.instant_upload)),
        "Tus-Checksum-Algorithm": checksum_algorithms(),
    }
    if ctx.config.server.max_upload_size:
        headers["Tus-Max-Size"] = str(ctx.config.server.max_upload_size)
    # the resumable-upload RFC's discovery: OPTIONS carries Upload-Limit
    headers["Upload-Limit"] = upload_limit(ctx, UNVERSIONED, None) or "min-size=0"
    return web.Response(status=204, headers=headers)


def _refused(exc: AccessError) -> web.Response:
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'UpToken realm="upload-gateway", Bearer'
    return web.Response(status=exc.status, text=exc.message + "\n", headers=headers)


#: the protocols whose uploads live under the tus path (never Qiniu's)
PATH_PROTOCOLS = frozenset({"tus", "ietf"})


def _admit(ctx: TusContext, method: str, record: UploadRecord) -> None:
    """Whether this request may touch ``record``: a tus (or IETF) record whose
    owner the request's credential matches (a signed URL for GET in a private
    bucket). Anything else is "no such upload", never a hint that it exists."""
    if record.protocol not in PATH_PROTOCOLS:
        raise UploadNotFound("no such upload")
    if method == "GET" and ctx.gate.is_private(record.bucket):
        ctx.gate.check_signed(ctx.base + ctx.request.raw_path)
    elif not ctx.gate.admits(ctx.grant, record):
        raise UploadNotFound("no such upload")
    ctx.record = record


async def _admitted(ctx: TusContext, upload_id: str, method: str) -> UploadRecord:
    """The upload, read, if this request may touch it (the IETF protocol's
    handlers read it first; tus's are checked on the core's own read)."""
    record = await ctx.service.get(upload_id)
    _admit(ctx, method, record)
    return record


def _error(exc: UploadError) -> web.Response:
    if exc.status >= 500:
        note_failure(exc)
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if isinstance(exc, ServiceUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status == 412:
        headers["Tus-Version"] = TUS_VERSION
    if isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = exc.message
    response = web.Response(
        status=exc.status, text=client_message(exc, current_id()) + "\n", headers=headers
    )
    if isinstance(exc, RequestTimeout):
        response.force_close()  # the rest of a stalled body is not waited for
    return response


async def _dispatch(request: web.Request, upload_id: str | None) -> web.StreamResponse:
    ctx = TusContext(request, request.app[SERVICE], request.app[CONFIG], request.app[GATE])
    method = _method(request)
    if ietf.applies(request, method, upload_id):  # the IETF resumable-upload protocol
        set_protocol("ietf")
        return await ietf.handle(ctx, method, upload_id, admit=_admitted)
    if method == "OPTIONS":
        return _options(ctx)
    if method != "GET" and request.headers.get("Tus-Resumable") != TUS_VERSION:
        return web.Response(
            status=412,
            text="unsupported Tus-Resumable version\n",
            headers={"Tus-Version": TUS_VERSION},
        )
    if upload_id is None:
        if method != "POST":
            raise web.HTTPMethodNotAllowed(method, ["POST", "OPTIONS"])
        ctx.grant = ctx.gate.grant_to_upload(request, ctx.bucket)
        return await creation.create(ctx)
    handler = _UPLOAD_METHODS.get(method)
    if handler is None:
        raise web.HTTPMethodNotAllowed(method, [*list(_UPLOAD_METHODS), "OPTIONS"])
    ctx.grant = ctx.gate.grant(request)

    async def admit(record: UploadRecord) -> None:
        _admit(ctx, method, record)

    ctx.admit = admit  # judged on the record the handler's core call reads anyway
    try:
        return await handler(ctx, upload_id)
    finally:
        # the closure holds ctx, which holds the request: let both go by
        # reference counting (ARCHITECTURE.md, §1)
        ctx.admit = None


async def _handle(request: web.Request, upload_id: str | None) -> web.StreamResponse:
    try:
        response = await _dispatch(request, upload_id)
    except UploadError as exc:
        response = _error(exc)
    except RequestPayloadError as exc:
        response = _error(BadRequest(malformed_reason(exc)))
    except AccessError as exc:
        response = _refused(exc)
    except web.HTTPException as exc:
        response = exc
    except Exception as exc:
        note_failure(exc)
        log.exception("tus %s %s failed", request.method, request.path)
        response = web.Response(status=500, text=f"internal error; {RETRY_LATER}\n")
    if not response.prepared:
        if not ietf.applies(request, _method(request), upload_id):
            response.headers["Tus-Resumable"] = TUS_VERSION
        _cors(request, response, request.app[CONFIG].server.cors_allow_origin)
    return response


async def collection(request: web.Request) -> web.StreamResponse:
    return await _handle(request, None)


async def member(request: web.Request) -> web.StreamResponse:
    return await _handle(request, request.match_info["upload_id"])


def setup(app: web.Application, path: str) -> None:
    base = path.rstrip("/")
    app.router.add_route("*", base, collection)
    app.router.add_route("*", base + "/", collection)
    app.router.add_route("*", base + "/{upload_id:[A-Za-z0-9_-]+}", member)
