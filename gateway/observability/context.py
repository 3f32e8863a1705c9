"""The request a piece of code runs for, in a context variable.

The middleware opens a ``RequestInfo`` per request; every task the request
starts inherits it, so the backends' log lines carry the request id without
knowing of it. Code that learns which upload the request is about says so
with ``annotate`` (the observed state store does, on the first record a
request reads or creates); the failure behind a 5xx is noted with
``note_failure`` by whoever turns it into a response.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from dataclasses import dataclass

#: an incoming X-Request-Id is kept if it looks like an id, else replaced
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


@dataclass
class RequestInfo:
    id: str
    protocol: str
    upload_id: str | None = None
    bucket: str | None = None
    key: str | None = None
    #: what made the request fail with a 5xx (exception with its causes)
    failure: BaseException | None = None


CURRENT: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "upload_gateway_request", default=None
)


def request_id_from(header: str | None) -> str:
    """The client's id if it is a plausible one (bounded, no spaces or
    control characters), else a new random one."""
    if header and _ACCEPTABLE_ID.fullmatch(header):
        return header
    return secrets.token_hex(12)


def current() -> RequestInfo | None:
    return CURRENT.get()


def current_id() -> str | None:
    info = CURRENT.get()
    return info.id if info is not None else None


def annotate(upload_id: str | None, bucket: str | None, key: str | None) -> None:
    """Name the upload the current request is about (the first one wins:
    parts read by an assembly do not replace the assembly; its own bucket and
    key are updated, as a Qiniu form upload learns its key late)."""
    info = CURRENT.get()
    if info is None or info.upload_id not in (None, upload_id):
        return
    info.upload_id = upload_id
    info.bucket = bucket
    info.key = key


def set_protocol(protocol: str) -> None:
    """The request turned out to speak another protocol on the same route
    (the IETF resumable-upload draft on the tus path)."""
    info = CURRENT.get()
    if info is not None:
        info.protocol = protocol


def note_failure(exc: BaseException) -> None:
    """Remember why the current request is answered with a 5xx."""
    info = CURRENT.get()
    if info is not None:
        info.failure = exc
