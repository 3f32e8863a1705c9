"""HTTP request trailers for aiohttp (tus ``checksum-trailer``).

aiohttp parses the trailer section of a chunked request body and throws it
away. ``install()`` makes the server use aiohttp's pure-Python request parser
with a headers parser that keeps the trailers of the body being read, so a
handler can ask for them with ``trailers_of(request)`` once it has read the
body to its end. This is the one place that reaches into aiohttp internals
(``web_protocol.HttpRequestParser``, ``HttpParser._headers_parser`` and
``_payload_parser``); ``install()`` checks they are there and otherwise leaves
aiohttp alone and reports that trailers are unavailable.
"""

from __future__ import annotations

import logging
import weakref
from collections import OrderedDict
from typing import Any

from aiohttp import http_parser, web, web_protocol
from multidict import CIMultiDictProxy

log = logging.getLogger(__name__)

# payload id → (payload, trailers); the payload is kept to make the id safe
_TRAILERS: OrderedDict[int, tuple[Any, CIMultiDictProxy[str]]] = OrderedDict()
_MAX_PENDING = 1024
_installed = False


class _RecordingHeadersParser(http_parser.HeadersParser):
    """Parses header blocks as usual; a block parsed while a body is being
    read is that body's trailer section, and is kept for the handler."""

    def __init__(self, owner: Any, template: http_parser.HeadersParser) -> None:
        super().__init__(
            template.max_line_size, template.max_headers, template.max_field_size, template._lax
        )
        # weakly: the owner holds this parser, and a body cut short leaves
        # the owner's payload parser holding the body's unread bytes — a
        # cycle only a full collection would free (ARCHITECTURE.md, §1)
        self._owner = weakref.ref(owner)

    def parse_headers(self, lines: list[bytes]) -> Any:
        result = super().parse_headers(lines)
        payload_parser = getattr(self._owner(), "_payload_parser", None)
        if payload_parser is not None and len(result[0]):
            payload = payload_parser.payload
            _TRAILERS[id(payload)] = (payload, result[0])
            while len(_TRAILERS) > _MAX_PENDING:
                _TRAILERS.popitem(last=False)
        return result


class _TrailerRequestParser(http_parser.HttpRequestParserPy):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._headers_parser = _RecordingHeadersParser(self, self._headers_parser)

    def feed_data(self, data: bytes, *args: Any, **kwargs: Any) -> Any:
        # feed_data(b"") is the protocol resuming reading. A pause requested
        # while the last chunk was being fed is over: aiohttp's Python parser
        # keeps that flag, then stashes the next bytes (the end of a chunked
        # body) with nothing left to feed them again, and the body never ends.
        if not data and self._payload_parser is not None:
            self._payload_parser._paused = False
        return super().feed_data(data, *args, **kwargs)


def install() -> bool:
    """Switch aiohttp's server to the trailer-keeping parser (idempotent)."""
    global _installed
    if _installed:
        return True
    probe = http_parser.HttpRequestParserPy.__init__
    if not (
        hasattr(web_protocol, "HttpRequestParser")
        and hasattr(http_parser.HeadersParser, "parse_headers")
        and "_headers_parser" in probe.__code__.co_names
    ):
        log.warning("this aiohttp version hides request trailers; checksum-trailer is off")
        return False
    web_protocol.HttpRequestParser = _TrailerRequestParser
    _installed = True
    return True


def available() -> bool:
    return _installed


def trailers_of(request: web.Request) -> CIMultiDictProxy[str] | None:
    """The trailer fields of ``request``'s body (call after reading it all)."""
    entry = _TRAILERS.pop(id(request.content), None)
    if entry is None or entry[0] is not request.content:
        return None
    return entry[1]
