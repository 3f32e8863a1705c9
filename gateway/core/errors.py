"""The one error catalogue of the core. Protocols render these their own way
(tus: status + text; Qiniu: status + ``{"error"}``); anything else that
escapes a handler is an internal error.

    UploadError
    ├── BadRequest            400  malformed or contradictory request
    ├── Forbidden             403  operation not allowed on this upload (PATCH on a final)
    │   └── ObjectExists      403  an insert-only upload's key was taken before it finished
    ├── UploadNotFound        404  no such upload
    ├── OffsetMismatch        409  the client's offset is not the upload's (``current``)
    ├── UploadExists          409  a record with this id exists (state stores' ``create``)
    ├── UploadGone            410  terminated or expired
    │   └── NoSuchSession     410  a multipart session unknown, ended or of another bucket
    ├── TooLarge              413  past the declared length or the size limit
    ├── UnsupportedMediaType  415  a body of the wrong Content-Type
    ├── RequestTimeout        408  the client sent no body bytes for too long
    ├── RangeNotSatisfiable   416  a Range outside the object
    ├── ChecksumMismatch      460  the body does not match its checksum
    ├── UnsupportedChecksum   400  an algorithm the gateway does not offer
    ├── Locked                423  another request holds the upload for too long
    ├── NotReady              409  the upload is not finished (download, assembly)
    ├── ServiceUnavailable    503  the backend or state store is down (``retry_after``)
    └── HookRejected          4xx  a pre-create / pre-finish hook refused (its status)
"""

from __future__ import annotations


class UploadError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code.replace("-", " "))
        self.message = message or self.code.replace("-", " ")


class BadRequest(UploadError):
    status, code = 400, "bad-request"


class UnsupportedChecksum(UploadError):
    status, code = 400, "unsupported-checksum-algorithm"


class Forbidden(UploadError):
    status, code = 403, "forbidden"


class ObjectExists(Forbidden):
    """An insert-only upload finished on a key an object was made at since it
    began: refused, its bytes discarded (its id then answers 410)."""

    code = "object-exists"

    def __init__(self, message: str = "file exists") -> None:
        super().__init__(message)


class UploadNotFound(UploadError):
    status, code = 404, "upload-not-found"


class OffsetMismatch(UploadError):
    status, code = 409, "offset-mismatch"

    def __init__(self, current: int) -> None:
        super().__init__(f"offset mismatch: the upload is at {current}")
        self.current = current


class UploadExists(UploadError):
    status, code = 409, "upload-exists"


class NotReady(UploadError):
    status, code = 409, "upload-not-finished"


class UploadGone(UploadError):
    status, code = 410, "upload-gone"


class NoSuchSession(UploadGone):
    code = "no-such-session"

    def __init__(self) -> None:
        super().__init__("no such multipart upload")


class TooLarge(UploadError):
    status, code = 413, "too-large"


class UnsupportedMediaType(UploadError):
    status, code = 415, "unsupported-media-type"


class RangeNotSatisfiable(UploadError):
    status, code = 416, "range-not-satisfiable"


class ChecksumMismatch(UploadError):
    status, code = 460, "checksum-mismatch"


class RequestTimeout(UploadError):
    status, code = 408, "request-timeout"


class Locked(UploadError):
    status, code = 423, "upload-locked"


class ServiceUnavailable(UploadError):
    status, code = 503, "service-unavailable"

    def __init__(self, message: str = "", retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HookRejected(UploadError):
    """A synchronous hook (pre-create, pre-finish) said no: the client gets
    the hook's status (4xx) and one line of its body."""

    code = "rejected-by-hook"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message or "rejected")
        self.status = status


#: all a client learns of a 5xx; the cause goes to the log
RETRY_LATER = "temporarily unavailable; retry later"


def client_message(exc: UploadError, request_id: str | None = None) -> str:
    """The text a client sees: a 5xx says only to retry later, with the
    request id to quote (the store's details stay in the log)."""
    if exc.status < 500:
        return exc.message
    return f"{RETRY_LATER} (request {request_id})" if request_id else RETRY_LATER
