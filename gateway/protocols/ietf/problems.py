"""Errors as the drafts want them: ``application/problem+json`` bodies
(RFC 9457) with the draft's problem types where the version defines them,
``Upload-Offset`` on an offset mismatch, and the completeness field set to
false (the response does not come from processing a complete upload)."""

from __future__ import annotations

import json

from aiohttp import web

from gateway.core import (
    BadRequest,
    ChecksumMismatch,
    OffsetMismatch,
    ServiceUnavailable,
    UploadError,
    UploadGone,
    UploadNotFound,
    client_message,
)
from gateway.observability.context import current_id
from gateway.protocols.ietf.versions import Version

_TYPES = "https://iana.org/assignments/http-problem-types#"
PROBLEM_JSON = "application/problem+json"


class InconsistentLength(BadRequest):
    """Two indications of the upload's length disagree."""

    code = "inconsistent-upload-length"


class CompletedUpload(BadRequest):
    """An append to an upload that is already complete."""

    code = "completed-upload"


def _problem_type(version: Version, exc: UploadError) -> str:
    if isinstance(exc, OffsetMismatch) and version.problem_types:
        return _TYPES + "mismatching-upload-offset"
    if isinstance(exc, CompletedUpload) and version.problem_types:
        return _TYPES + "completed-upload"
    if isinstance(exc, InconsistentLength) and version.inconsistent_length_type:
        return _TYPES + "inconsistent-upload-length"
    return "about:blank"


def render(
    version: Version,
    exc: UploadError,
    *,
    provided_offset: int | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    status = exc.status
    if isinstance(exc, UploadGone | UploadNotFound):
        status = 404 if isinstance(exc, UploadNotFound) else version.gone_status
    elif isinstance(exc, ChecksumMismatch):  # 460 is tus's; a Content-Digest mismatch is a 400
        status = 400
    out = dict(headers or {})
    body: dict[str, object] = {"type": _problem_type(version, exc)}
    if isinstance(exc, OffsetMismatch):
        out["Upload-Offset"] = str(exc.current)
        body["expected-offset"] = exc.current
        if provided_offset is not None:
            body["provided-offset"] = provided_offset
    if isinstance(exc, ServiceUnavailable):
        out["Retry-After"] = str(exc.retry_after)
    # a 5xx says only to retry later, with the request id (details: the log)
    return _problem(version, status, client_message(exc, current_id()), body, out)


def render_refusal(version: Version, status: int, message: str) -> web.Response:
    """An access refusal (no or a bad credential, a policy's limit)."""
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'UpToken realm="upload-gateway", Bearer'
    return _problem(version, status, message, {"type": "about:blank"}, headers)


def _problem(
    version: Version,
    status: int,
    title: str,
    body: dict[str, object],
    headers: dict[str, str],
) -> web.Response:
    headers[version.complete_field] = version.complete_value(False)
    document = {"type": body.pop("type"), "title": title, "status": status, **body}
    return web.Response(
        status=status, text=json.dumps(document), content_type=PROBLEM_JSON, headers=headers
    )
