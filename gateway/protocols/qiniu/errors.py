"""Qiniu's error catalogue: the status codes and exact messages SDKs rely on.

Java and Go restart an upload on ``701 invalid context`` and on a 612 whose
text contains ``no such uploadId``; Python/Node retry only statuses >= 500
outside Qiniu's own list (579, 612, 614, 631, 701 are final). So the codes and
texts below are part of the protocol, not decoration
(docs/qiniu-protocol.md §0, §5).

Each entry is an ``ErrorKind`` (a value); ``kind.error()`` makes the
exception a handler raises, and the HTTP layer renders ``QiniuError`` as
``status`` + ``{"error": message}``.
"""

from __future__ import annotations

from dataclasses import dataclass


class QiniuError(Exception):
    """An error answered to a Qiniu client as ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.message}


@dataclass(frozen=True)
class ErrorKind:
    status: int
    message: str

    def error(self, detail: str | None = None) -> QiniuError:
        """The exception; ``detail`` replaces the message where the exact
        text is not something SDKs match on."""
        return QiniuError(self.status, detail or self.message)


BAD_REQUEST = ErrorKind(400, "bad request")
BAD_TOKEN = ErrorKind(401, "bad token")
EXPIRED_TOKEN = ErrorKind(401, "expired token")
KEY_SCOPE = ErrorKind(403, "key doesn't match with scope")
FORBIDDEN = ErrorKind(403, "forbidden")
MIME_LIMIT = ErrorKind(403, "limited mimeType")
FILE_TOO_SMALL = ErrorKind(403, "file size is less than fsizeMin")
NOT_FOUND = ErrorKind(404, "not found")
METHOD_NOT_ALLOWED = ErrorKind(405, "method not allowed")
CRC32_MISMATCH = ErrorKind(406, "unmatched checksum")
TOO_LARGE = ErrorKind(413, "request entity too large")
CALLBACK_FAILED = ErrorKind(579, "callback failed")
SERVICE_UNAVAILABLE = ErrorKind(503, "service unavailable")
SERVER_ERROR = ErrorKind(599, "internal error")
NO_SUCH_FILE = ErrorKind(612, "no such file or directory")
NO_SUCH_UPLOAD = ErrorKind(612, "no such uploadId")
FILE_EXISTS = ErrorKind(614, "file exists")
NO_SUCH_BUCKET = ErrorKind(631, "no such bucket")
INVALID_CTX = ErrorKind(701, "invalid context")
