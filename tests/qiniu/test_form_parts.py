"""A form's parts as ``FormParts`` reads them are aiohttp's, whatever the
socket reads; malformed or oversized framing is a ``ValueError``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import pytest
from aiohttp import MultipartReader, web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway.app_keys import CONFIG
from gateway.config import load_config
from gateway.protocols.qiniu.form_parts import FormParts

BOUNDARY = "b0undary-7Hc2"
Part = tuple[str, str | None, str | None, bytes]  # name, filename, Content-Type, bytes


class _Protocol:
    _reading_paused = False

    def pause_reading(self, **_: object) -> None:
        pass

    def resume_reading(self, **_: object) -> None:
        pass


def body_of(parts: Sequence[Part], boundary: str = BOUNDARY) -> bytes:
    out = bytearray()
    for name, filename, content_type, data in parts:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'.encode()
        if filename is not None:
            out += f'; filename="{filename}"'.encode()
        out += b"\r\n"
        if content_type is not None:
            out += f"Content-Type: {content_type}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def _request(
    reads: Sequence[bytes], content_type: str = f"multipart/form-data; boundary={BOUNDARY}"
) -> web.Request:
    app = web.Application()
    app[CONFIG] = load_config({"server": {"body_timeout": "5s"}})
    stream = StreamReader(_Protocol(), 2**16, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    for read in reads:
        stream.feed_data(read)
    stream.feed_eof()
    return make_mocked_request(
        "POST", "/", headers=CIMultiDict({"Content-Type": content_type}), app=app, payload=stream
    )


async def ours(reads: Sequence[bytes], **kwargs: str) -> tuple[list[Part], list[list[bytes]]]:
    parts, chunks = [], []
    reader = FormParts(_request(reads, **kwargs))
    while (part := await reader.next()) is not None:
        got = []
        while chunk := await part.read_chunk():
            got.append(chunk)
        parts.append((part.name, part.filename, part.content_type, b"".join(got)))
        chunks.append(got)
    return parts, chunks


async def aiohttp_reads(body: bytes) -> list[Part]:
    request = _request([body])
    reader = MultipartReader(request.headers, request.content)
    parts: list[Part] = []
    while (part := await reader.next()) is not None:
        assert not isinstance(part, MultipartReader)
        data = await part.read()
        parts.append((part.name or "", part.filename, part.headers.get("Content-Type"), data))
    return parts


def _split(body: bytes, cuts: list[int]) -> list[bytes]:
    edges = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    return [body[a:b] for a, b in itertools.pairwise(edges) if b > a]


#: what the SDKs put in a name or filename (aiohttp and multipart unescape
#: backslashes and percent signs differently; browsers escape quotes so)
_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"], exclude_characters='"\\%;/'),
    max_size=12,
)
_PART = st.tuples(
    _TEXT,
    st.none() | _TEXT,
    st.none() | st.sampled_from(["application/octet-stream", "image/png", "text/plain"]),
    st.binary(max_size=3000)
    | st.sampled_from([b"", b"\r\n", b"\r\n--b0undary", b"--b0undary-7Hc"]),
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(_PART, min_size=1, max_size=4), cuts=st.lists(st.integers(0, 20_000)))
def test_same_parts_as_aiohttp_whatever_the_reads(parts: list[Part], cuts: list[int]) -> None:
    body = body_of(parts)

    async def run() -> None:
        got, _ = await ours(_split(body, cuts))
        assert got == await aiohttp_reads(body)
        assert [p[3] for p in got] == [p[3] for p in parts]

    asyncio.run(run())


def test_a_read_holding_no_boundary_is_handed_on_as_it_came() -> None:
    reads = [b"x" * 1000 for _ in range(6)]
    head, tail = body_of([("file", "a.bin", None, b"@")]).split(b"@")

    async def run() -> None:
        parts, chunks = await ours([head, *reads, tail])
        assert parts == [("file", "a.bin", None, b"".join(reads))]
        assert all(a is b for a, b in zip(chunks[0], reads, strict=True))

    asyncio.run(run())


@pytest.mark.parametrize(
    ("reads", "content_type"),
    [
        ([body_of([("token", None, None, b"t")])[:-8]], None),  # cut before its end
        ([b""], None),  # no body
        ([b"--" + BOUNDARY.encode() + b"\r\n" + b"X-A: b\r\n" * 33 + b"\r\n"], None),
        ([b"--" + BOUNDARY.encode() + b"\r\nX-A: " + b"a" * 9000], None),
        ([b"--" + BOUNDARY.encode() + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n"], None),
        ([b"x" * 300_000, b"y" * 300_000, body_of([("a", None, None, b"1")])], None),  # preamble
        ([body_of([("a", None, None, b"1")]), b"z" * 300_000, b"z" * 300_000], None),  # epilogue
        ([body_of([("a", None, None, b"1")])], "multipart/form-data"),  # no boundary
        (
            [body_of([("a", None, None, b"1")], "b" * 71)],
            "multipart/form-data; boundary=" + "b" * 71,
        ),
    ],
)
def test_malformed_or_oversized_framing_is_a_value_error(
    reads: list[bytes], content_type: str | None
) -> None:
    async def run() -> None:
        kwargs = {"content_type": content_type} if content_type else {}
        with pytest.raises(ValueError):
            await ours(reads, **kwargs)

    asyncio.run(run())
