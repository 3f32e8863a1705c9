"""aiohttp's rejections of malformed requests as one WARNING line each.

aiohttp answers a request it cannot parse (a bad request line, an over-long
header, a broken chunked body) with 400 itself, then logs it on
``aiohttp.server`` at ERROR with a traceback — as if the server had failed.
The filter installed here turns exactly those records (their exception is
aiohttp's own parse error) into one WARNING line naming the peer and the
cause, with a request id: the id the client was answered with when a
handler ran (a broken body), else a new one (aiohttp's own 400 carries no
id, so the line still has one to be found by). Every other record of that
logger passes unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from gateway.observability.context import current_id, request_id_from

log = logging.getLogger("aiohttp.server")

#: how much of aiohttp's description of the request a line quotes
_REASON_CHARS = 200


def _client_fault(exc: BaseException | None) -> BaseException | None:
    """The parse error behind ``exc`` if the client caused it, else None."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, HttpProcessingError | RequestPayloadError):
            return exc
        exc = exc.__cause__
        seen += 1
    return None


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if text.startswith("400, message: "):
        text = text[len("400, message: ") :]
    if len(text) > _REASON_CHARS:
        text = text[: _REASON_CHARS - 1] + "…"
    return text


#: the causes counted by name (aiohttp's parse errors); anything else: "other"
CAUSES = frozenset(
    {
        "BadHttpMessage",
        "BadHttpMethod",
        "BadStatusLine",
        "ContentLengthError",
        "InvalidHeader",
        "InvalidURLError",
        "LineTooLong",
        "RequestPayloadError",
        "TransferEncodingError",
    }
)


class RejectionFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        #: called with the cause of every rejection (the metrics' counter)
        self.count: Callable[[str], None] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is None or record.levelno < logging.ERROR:
            return True
        fault = _client_fault(record.exc_info[1])
        if fault is None:
            return True
        peer = record.args[0] if isinstance(record.args, tuple) and record.args else None
        where = f" from {peer}" if peer and "%s" in str(record.msg) else ""
        cause = type(fault).__name__
        if self.count is not None:
            self.count(cause if cause in CAUSES else "other")
        record.msg = "rejected a malformed request%s (%s): %s"
        record.args = (where, type(fault).__name__, one_line(fault))
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        # the request the body belonged to, else the one being served, else
        # (aiohttp refused it before any handler ran) a new id
        tagged = getattr(fault, _REQUEST_ID, None)
        record.request_id = tagged or current_id() or request_id_from(None)
        return True


#: where ``remember_request`` keeps a request's id on its body's parse error
_REQUEST_ID = "gateway_request_id"


def remember_request(fault: BaseException | None, request_id: str) -> None:
    """Tie a request body's parse error to its request: aiohttp logs it again
    after the answer, outside the request (reading the rest of the body), and
    that line is to carry the id the client was given."""
    if fault is not None and _client_fault(fault) is fault:
        setattr(fault, _REQUEST_ID, request_id)


def install(count: Callable[[str], None] | None = None) -> None:
    """Add the filter to ``aiohttp.server`` once; ``count`` (if given) is
    called with the cause of every rejection from now on."""
    installed = [f for f in log.filters if isinstance(f, RejectionFilter)]
    rejection = installed[0] if installed else RejectionFilter()
    if not installed:
        log.addFilter(rejection)
    if count is not None:
        rejection.count = count
