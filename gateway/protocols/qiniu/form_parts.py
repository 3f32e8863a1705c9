"""The parts of a form upload as they stream, parsed by ``multipart``'s push
parser (Bottle's; pure Python, bounded).

aiohttp's ``MultipartReader`` copies a file part's bytes three or four times
on their way — socket reads joined into the size asked for, a window of the
previous and the current chunk to look for the boundary in, its tail pushed
back — and parses a part's ``Content-Disposition`` once for its name and
again for its filename: 0.95 ms of CPU for a 1 MiB form upload, more than
the qetag's SHA-1 of it (0.55 ms). ``PushMultipartParser`` looks for the
boundary in each socket read as it came and hands on a read holding none of
it as it is: 0.24 ms (``tests/qiniu/test_form_parts.py`` checks that both
read the same parts, whatever the chunking).

Bounded: a part's header lines (``_MAX_HEADER_LINE``) and their number
(``_MAX_HEADERS``); the parser keeps at most a header line or a boundary's
length of what it was given; a preamble or an epilogue is read up to
``_MAX_SILENT`` (then 400: aiohttp's reader stopped at the last boundary, this
one would read an epilogue to the body's end). A part's size is its reader's
to bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeAlias

from aiohttp import hdrs, web
from multipart import MultipartSegment, PushMultipartParser, parse_options_header

from gateway.protocols.bodies import body_read

#: a part's header line and header count (aiohttp's line bound; RFC 7578
#: names three headers, okhttp sends four)
_MAX_HEADER_LINE = 8190
_MAX_HEADERS = 32
#: RFC 2046 §5.1.1: 1 to 70 characters
_MAX_BOUNDARY = 70
#: bytes the parser may take without a part, a part's bytes or its end coming
#: of them: a part's header block is at most 32 × 8,190; beyond, the body is a
#: preamble, an epilogue or garbage that would otherwise be read to its end
_MAX_SILENT = 512 * 1024

_Event: TypeAlias = "MultipartSegment | bytes | None"


class _End:
    """No more events: the parser was closed at the end of the body."""


_END = _End()


class FormPart:
    """One part: its name ('' without one), filename, raw ``Content-Type``,
    and its bytes (``read_chunk``)."""

    def __init__(self, parts: FormParts, segment: MultipartSegment) -> None:
        self._parts = parts
        self.name: str = segment.name or ""
        self.filename: str | None = segment.filename
        self.content_type: str | None = next(
            (value for name, value in segment.headerlist if name == "Content-Type"), None
        )
        self.done = False

    @property
    def nested(self) -> bool:
        """A multipart body inside the part (not supported)."""
        return (self.content_type or "").lstrip().lower().startswith("multipart/")

    async def read_chunk(self) -> bytes:
        """The part's next bytes (what one socket read brought of it), b""
        once it ended; each read waits at most ``server.body_timeout``."""
        if self.done:
            return b""
        event = await self._parts.event()
        if event is None:
            self.done = True
            return b""
        if not isinstance(event, bytes):
            raise ValueError("the multipart body ended inside a part")
        return event


class FormParts:
    """A request's ``multipart/form-data`` body, one part after the other.
    Malformed input raises ``ValueError`` (``multipart.MultipartError``)."""

    def __init__(self, request: web.Request) -> None:
        _, options = parse_options_header(request.headers.get(hdrs.CONTENT_TYPE, ""))
        boundary = options.get("boundary", "")
        if not 0 < len(boundary) <= _MAX_BOUNDARY:
            raise ValueError("no multipart boundary, or one too long")
        self._request = request
        self._parser = PushMultipartParser(
            boundary, max_header_size=_MAX_HEADER_LINE, max_header_count=_MAX_HEADERS
        )
        self._events: Iterator[_Event] = iter(())
        self._part: FormPart | None = None
        #: bytes given to the parser since its last event
        self._silent = 0

    async def event(self) -> _Event | _End:
        """The parser's next event, reading the body as it needs."""
        while True:
            event = next(self._events, _END)
            if event is not _END:
                self._silent = 0
                return event
            if self._parser.closed:
                return _END
            chunk = await body_read(self._request, self._read())
            self._silent += len(chunk)
            if self._silent > _MAX_SILENT:
                raise ValueError(f"no multipart part in {_MAX_SILENT // 1024} KiB of the body")
            # b"" (the body's end) closes the parser: an error unless complete
            self._events = self._parser.parse(chunk)

    async def _read(self) -> bytes:
        """The body's next socket read as it came (``readany`` joins all that
        is buffered: a copy whenever the parts' consumer fell behind); b""
        at its end."""
        if not self._request.body_exists:
            return b""  # aiohttp's shared empty body: see bodies.RequestBody
        while True:
            data, chunk_end = await self._request.content.readchunk()
            if data or not chunk_end:  # (b"", True): a chunked body's chunk ended
                return data

    async def next(self) -> FormPart | None:
        """The next part (what is left of the one before skipped), None after
        the last."""
        if self._part is not None:
            while await self._part.read_chunk():
                pass
        event = await self.event()
        if isinstance(event, _End):
            return None
        if not isinstance(event, MultipartSegment):
            raise ValueError("unexpected bytes between multipart parts")
        self._part = FormPart(self, event)
        return self._part
