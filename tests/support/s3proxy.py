"""An HTTP proxy in front of a real S3 store that answers chosen requests
itself, as a store without a feature does: UploadPartCopy ``NotImplemented``
(a store without it), CompleteMultipartUpload listing checksums
``MalformedXML`` (Swift 2.30's s3api), an aws-chunked part
``XAmzContentSHA256Mismatch`` (Ceph RGW 16); or holds chosen requests, body
received, until the test releases them (a slow store); or changes a header
of the store's answer to chosen requests (an ETag that is not the MD5, as
AWS gives with SSE-KMS). Everything else goes
to the store unchanged — the same headers, Host included, so signatures still
hold — and its answer comes back as it was.

Bodies are held whole on their way through: keep test objects small.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from testservers.ports import free_port

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-connection",
    "content-length",
    "expect",  # the proxy has read the body already
}


@dataclass(frozen=True)
class Seen:
    """A request as the proxy received it."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes


Match = Callable[[Seen], bool]


def upload_part_copy(r: Seen) -> bool:
    return r.method == "PUT" and "partNumber" in r.query and "x-amz-copy-source" in r.headers


def upload_part(r: Seen) -> bool:
    """An UploadPart with the bytes in its body (no server-side copy)."""
    return r.method == "PUT" and "partNumber" in r.query and "x-amz-copy-source" not in r.headers


def server_side_copy(r: Seen) -> bool:
    """CopyObject or UploadPartCopy."""
    return r.method == "PUT" and "x-amz-copy-source" in r.headers


def complete_with_checksums(r: Seen) -> bool:
    return r.method == "POST" and "uploadId" in r.query and b"<ChecksumCRC32>" in r.body


def trailed_part(r: Seen) -> bool:
    """An UploadPart whose checksum comes in an aws-chunked trailer."""
    return r.method == "PUT" and "partNumber" in r.query and "x-amz-trailer" in r.headers


@dataclass(frozen=True)
class Refusal:
    match: Match
    status: int
    code: str
    message: str

    def body(self) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{self.message}</Message>"
            "<RequestId>s3proxy</RequestId></Error>"
        ).encode()


class S3Proxy:
    """``with S3Proxy(endpoint) as proxy:`` — point the backend at ``proxy.url``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self._refusals: dict[str, Refusal] = {}
        self._holds: dict[str, tuple[Match, asyncio.Event]] = {}
        self._headers: dict[str, tuple[Match, str, str]] = {}
        #: hold name → requests held (so far)
        self.held: Counter[str] = Counter()
        #: hold name → the requests held, as received
        self.held_seen: dict[str, list[Seen]] = defaultdict(list)
        #: refusal name → requests the proxy answered itself
        self.refused: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def refuse(self, name: str, match: Match, status: int, code: str, message: str) -> None:
        """From now on, answer requests that ``match`` with this S3 error."""
        self._refusals[name] = Refusal(match, status, code, message)

    def allow(self, name: str) -> None:
        self._refusals.pop(name, None)

    def set_header(self, name: str, match: Match, header: str, value: str) -> None:
        """From now on, answer requests that ``match`` with ``header: value``
        in place of the store's (``unset(name)`` stops it)."""
        self._headers[name] = (match, header, value)

    def unset(self, name: str) -> None:
        self._headers.pop(name, None)

    def hold(self, name: str, match: Match) -> None:
        """From now on, keep requests that ``match`` (their bodies read)
        unanswered until ``release(name)``."""
        self._holds[name] = (match, asyncio.Event())

    def wait_held(self, name: str, count: int = 1, timeout: float = 30) -> None:
        """Until ``count`` requests are held under ``name`` (AssertionError
        if they do not reach the store in ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while self.held[name] < count:
            assert time.monotonic() < deadline, f"{name}: the request never reached the store"
            time.sleep(0.05)

    def release(self, name: str) -> None:
        """Let the requests held under ``name`` go on (and hold no more)."""
        _, event = self._holds.pop(name)
        self._loop.call_soon_threadsafe(event.set)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen = Seen(request.method, request.path, request.query, request.headers, body)
        for name, (match, event) in list(self._holds.items()):
            if match(seen):
                self.held[name] += 1
                self.held_seen[name].append(seen)
                await event.wait()
        for name, refusal in list(self._refusals.items()):
            if refusal.match(seen):
                self.refused[name] += 1
                return web.Response(
                    status=refusal.status, body=refusal.body(), content_type="application/xml"
                )
        assert self._http is not None
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP
        )
        async with self._http.request(
            request.method,
            URL(f"{self.upstream}{request.raw_path}", encoded=True),  # as signed
            headers=headers,
            data=body if body else None,
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            allow_redirects=False,
        ) as upstream:
            answer = await upstream.read()
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for k, v in upstream.headers.items():
                if k.lower() not in _HOP_BY_HOP:
                    response.headers.add(k, v)
            for match, header, value in list(self._headers.values()):
                if match(seen):
                    response.headers[header] = value
            length = upstream.headers.get("Content-Length")
            if length is not None:  # a HEAD's too, which has no body here
                response.headers["Content-Length"] = length
            await response.prepare(request)
            if answer:
                await response.write(answer)
            await response.write_eof()
            return response

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._http = aiohttp.ClientSession(auto_decompress=False)
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> S3Proxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the S3 proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            if self._http is not None:
                await self._http.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
