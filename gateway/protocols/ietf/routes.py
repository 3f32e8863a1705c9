"""Telling IETF requests from tus ones on the shared upload path, and
dispatching them.

A request is the IETF protocol's when it carries
``Upload-Draft-Interop-Version``, or — without ``Tus-Resumable`` — one of
``Upload-Complete`` / ``Upload-Incomplete``, or is a HEAD or DELETE of an
upload (a client of the final RFC sends no interop version, and its offset
retrievals and cancellations carry no field of the protocol at all; tus
would refuse them with 412). Everything else (tus requests, a browser's GET
of a finished file, plain OPTIONS) stays tus's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.access.errors import AccessError
from gateway.core import BadRequest, RequestTimeout, TooLarge, UploadError, UploadRecord
from gateway.numbers import is_digits
from gateway.observability.context import note_failure
from gateway.protocols.ietf import creation, fields, resource
from gateway.protocols.ietf.limits import upload_limit
from gateway.protocols.ietf.problems import render, render_refusal
from gateway.protocols.ietf.versions import (
    INTEROP_HEADER,
    SUPPORTED,
    UNVERSIONED,
    VERSIONS,
    Version,
)
from gateway.protocols.tus.context import TusContext

Handler = Callable[[TusContext, Version, str], Awaitable[web.Response]]
#: the tus routes' admission of a request to an upload of the path (access
#: control: its credential, its owner; Qiniu's records are not the path's)
Admit = Callable[[TusContext, str, str], Awaitable[UploadRecord]]

_CREATION = ("POST", "PUT", "PATCH")
_RESOURCE: dict[str, Handler] = {
    "HEAD": resource.offset,
    "GET": resource.offset,
    "PATCH": resource.append,
    "DELETE": resource.cancel,
}


def applies(request: web.Request, method: str, upload_id: str | None) -> bool:
    headers = request.headers
    if INTEROP_HEADER in headers:
        return True
    if "Tus-Resumable" in headers:
        return False
    if "Upload-Complete" in headers or "Upload-Incomplete" in headers:
        return True
    return upload_id is not None and method in ("HEAD", "DELETE")


def _version(request: web.Request) -> tuple[Version, str | None]:
    """The request's version, or the newest rules and why the request's
    version is refused."""
    raw = request.headers.get(INTEROP_HEADER)
    if raw is None:
        return UNVERSIONED, None
    raw = raw.strip(" \t")
    if is_digits(raw) and len(raw) <= 3 and int(raw) in VERSIONS:
        return VERSIONS[int(raw)], None
    return UNVERSIONED, f"unsupported {INTEROP_HEADER} {raw[:20]!r}; supported: {SUPPORTED}"


def options(ctx: TusContext, version: Version) -> web.Response:
    """What a client learns before creating an upload: the limits (the
    drafts from -09 on also want ``Accept-Patch``)."""
    headers = {
        "Upload-Limit": upload_limit(ctx, version, None) or "min-size=0",
        "Accept-Patch": resource.PARTIAL_UPLOAD,
    }
    return web.Response(status=204, headers=headers)


async def _dispatch(
    ctx: TusContext, version: Version, method: str, upload_id: str | None, admit: Admit
) -> web.Response:
    if method == "OPTIONS":
        return options(ctx, version)
    if upload_id is None:
        # the drafts allow creation by any method with content
        if method not in _CREATION:
            raise web.HTTPMethodNotAllowed(method, [*_CREATION, "OPTIONS"])
        ctx.grant = ctx.gate.grant_to_upload(ctx.request, ctx.bucket)
        return await creation.create(ctx, version)
    handler = _RESOURCE.get(method)
    if handler is None:
        raise web.HTTPMethodNotAllowed(method, [*_RESOURCE, "OPTIONS"])
    ctx.grant = ctx.gate.grant(ctx.request)
    await admit(ctx, upload_id, method)
    return await handler(ctx, version, upload_id)


async def handle(
    ctx: TusContext, method: str, upload_id: str | None, *, admit: Admit
) -> web.StreamResponse:
    """Answer an IETF request; every UploadError and access refusal becomes
    a problem response."""
    version, refused = _version(ctx.request)
    try:
        if refused:
            raise BadRequest(refused)
        return await _dispatch(ctx, version, method, upload_id, admit)
    except AccessError as exc:
        return render_refusal(version, exc.status, exc.message)
    except UploadError as exc:
        headers: dict[str, str] = {}
        if isinstance(exc, TooLarge):
            limit = upload_limit(ctx, version, None)
            if limit:
                headers["Upload-Limit"] = limit
        if exc.status >= 500:
            note_failure(exc)  # logged at ERROR with its cause, as for tus
        response = render(version, exc, provided_offset=_provided_offset(ctx), headers=headers)
        if isinstance(exc, RequestTimeout):
            response.force_close()  # the rest of a stalled body is not waited for
        return response


def _provided_offset(ctx: TusContext) -> int | None:
    try:
        return fields.integer(ctx.request.headers, "Upload-Offset")
    except BadRequest:
        return None
