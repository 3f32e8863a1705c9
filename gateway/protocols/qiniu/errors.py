"""Qiniu's error catalogue: the status codes and exact messages SDKs rely on.

Java and Go restart an upload on ``701 invalid context`` and on a 612 whose
text contains ``no such uploadId``; Python/Node retry only statuses >= 500
outside Qiniu's own list (579, 612, 614, 631, 701 are final). So the codes and
texts below are part of the protocol, not decoration
(ARCHITECTURE.md §8).

Each entry is an ``ErrorKind`` (a value); ``kind.error()`` makes the
exception a handler raises, and the HTTP layer renders ``QiniuError`` as
``status`` + ``{"error": message}``. Both types, and the refusals of tokens and
put policies, live in the access layer (``gateway.access.errors``); this
catalogue adds the codes of uploads.
"""

from __future__ import annotations

from gateway.access.errors import (
    BAD_REQUEST,
    BAD_TOKEN,
    EXPIRED_TOKEN,
    FILE_TOO_SMALL,
    KEY_SCOPE,
    MIME_LIMIT,
    TOO_LARGE,
)
from gateway.access.errors import AccessError as QiniuError
from gateway.access.errors import Refusal as ErrorKind

FORBIDDEN = ErrorKind(403, "forbidden")
NOT_FOUND = ErrorKind(404, "not found")
METHOD_NOT_ALLOWED = ErrorKind(405, "method not allowed")
REQUEST_TIMEOUT = ErrorKind(408, "request timeout")
CRC32_MISMATCH = ErrorKind(406, "unmatched checksum")
CALLBACK_FAILED = ErrorKind(579, "callback failed")
SERVICE_UNAVAILABLE = ErrorKind(503, "service unavailable")
SERVER_ERROR = ErrorKind(599, "internal error")
NO_SUCH_FILE = ErrorKind(612, "no such file or directory")
NO_SUCH_UPLOAD = ErrorKind(612, "no such uploadId")
FILE_EXISTS = ErrorKind(614, "file exists")
NO_SUCH_BUCKET = ErrorKind(631, "no such bucket")
INVALID_CTX = ErrorKind(701, "invalid context")

__all__ = [
    "BAD_REQUEST",
    "BAD_TOKEN",
    "CALLBACK_FAILED",
    "CRC32_MISMATCH",
    "EXPIRED_TOKEN",
    "FILE_EXISTS",
    "FILE_TOO_SMALL",
    "FORBIDDEN",
    "INVALID_CTX",
    "KEY_SCOPE",
    "METHOD_NOT_ALLOWED",
    "MIME_LIMIT",
    "NOT_FOUND",
    "NO_SUCH_BUCKET",
    "NO_SUCH_FILE",
    "NO_SUCH_UPLOAD",
    "REQUEST_TIMEOUT",
    "SERVER_ERROR",
    "SERVICE_UNAVAILABLE",
    "TOO_LARGE",
    "ErrorKind",
    "QiniuError",
]
