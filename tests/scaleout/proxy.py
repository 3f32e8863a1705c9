"""A tiny load balancer for tests: every request goes to a random instance.

Like any load balancer without sticky sessions it streams bodies both ways
unbuffered, sets ``X-Forwarded-*``, skips instances that refuse connections
(a killed instance) and answers 502 if an instance dies mid-request. It runs
its own event loop in a thread so synchronous clients (tuspy) can use it.
Every request is logged (method, path, instance, status) for assertions.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from testservers.ports import free_port

_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "host",
    "content-length",
}


@dataclass
class Hit:
    method: str
    path: str
    instance: int
    status: int  # 502: the instance failed mid-request
    headers: dict[str, str]
    body: bytes  # kept for error answers only


#: called with (instance index, bytes forwarded so far) while a PATCH body streams
BodyHook = Callable[[int, int], None]


class RandomProxy:
    def __init__(self, upstreams: list[str], *, seed: int | None = None) -> None:
        self.upstreams = upstreams
        self.port = free_port()
        self.hits: list[Hit] = []
        self.body_hook: BodyHook | None = None
        self._random = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> RandomProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> RandomProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start(self) -> None:
        # a fresh connection per request: no stale pooled sockets to a killed instance
        connector = aiohttp.TCPConnector(force_close=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=2),
        )
        app = web.Application(client_max_size=1 << 40)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # -- forwarding ----------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Forwarded-For"] = request.remote or ""
        length = request.content_length
        if length is not None:
            headers["Content-Length"] = str(length)
        has_body = bool(length) or "chunked" in request.headers.get("Transfer-Encoding", "")
        order = list(range(len(self.upstreams)))
        self._random.shuffle(order)
        for instance in order:
            body = self._body(request, instance) if has_body else None
            try:
                upstream = await self._session.request(
                    request.method,
                    self.upstreams[instance] + request.rel_url.raw_path_qs,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                )
            except aiohttp.ClientConnectorError:
                continue  # refused before any byte was sent: try another instance
            except (aiohttp.ClientError, OSError) as exc:
                return self._failed(request, instance, exc)
            try:
                return await self._relay(request, instance, upstream)
            except (aiohttp.ClientError, OSError) as exc:
                return self._failed(request, instance, exc)
            finally:
                upstream.release()
        return self._failed(request, -1, RuntimeError("no instance answers"))

    async def _body(self, request: web.Request, instance: int) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk, _ in request.content.iter_chunks():
            sent += len(chunk)
            yield chunk
            if self.body_hook is not None and request.method == "PATCH":
                self.body_hook(instance, sent)
                await asyncio.sleep(0)

    async def _relay(
        self, request: web.Request, instance: int, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        body = await upstream.read()
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
        kept = body if upstream.status >= 400 else b""
        self.hits.append(
            Hit(request.method, request.path, instance, upstream.status, headers, kept)
        )
        return web.Response(status=upstream.status, headers=headers, body=body)

    def _failed(self, request: web.Request, instance: int, exc: BaseException) -> web.Response:
        self.hits.append(Hit(request.method, request.path, instance, 502, {}, b""))
        return web.Response(status=502, text=f"bad gateway: {exc}\n")
