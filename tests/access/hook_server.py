"""A business service's hook endpoint for the tests (aiohttp, own thread):
decides pre-create / pre-finish from the upload's metadata, checks every
call's signature, and records what it received."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from typing import Any

from aiohttp import web

from testservers.ports import free_port

SECRET = "hook-test-secret"


def verified(body: bytes, header: str | None, secret: str = SECRET) -> bool:
    """What the README shows a receiver doing."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


class HookServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.calls: list[dict[str, Any]] = []
        self.unsigned = 0
        self._unavailable_once: set[Any] = set()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        ready.set()
        self._loop.run_forever()

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verified(body, request.headers.get("Hook-Signature")):
            self.unsigned += 1
            return web.Response(status=401, text="bad signature")
        call = json.loads(body)
        self.calls.append(call)
        decision = (call.get("metadata") or {}).get("decide", "")
        event = call["event"]
        # a Qiniu upload's metadata may come too late: its key decides
        key = str(call.get("key") or "")
        if key.startswith("precreate-"):
            decision = key.split("/", 1)[0].removeprefix("precreate-")
        if event == "pre-create" and decision == "rewrite-qiniu":
            return web.json_response(
                {
                    "key": "rewritten/qiniu/" + key.split("/", 1)[1],
                    "metadata": {"x-qn-meta-approved": "yes"},
                }
            )
        if event == "pre-create" and decision == "reject":
            return web.Response(status=403, text="quota exceeded for this user\nmore")
        if event == "pre-create" and decision == "rewrite":
            name = call["metadata"].get("filename", "x")
            return web.json_response(
                {"key": f"rewritten/{call['endUser']}/{name}", "metadata": {"approved": "yes"}}
            )
        if event == "pre-create" and decision.startswith("bucket:"):
            return web.json_response({"bucket": decision.removeprefix("bucket:")})
        if event == "pre-create" and decision == "limit":
            return web.json_response({"sizeLimit": 10})
        refused_key = str(call.get("key") or "").startswith("reject/")
        if event == "pre-finish" and (decision == "reject-finish" or refused_key):
            return web.Response(status=422, text="virus found")
        once = decision == "unavailable-finish-once"
        if event == "pre-finish" and once and call.get("id") not in self._unavailable_once:
            self._unavailable_once.add(call.get("id"))
            return web.Response(status=503, text="try again")
        if event == "pre-create" and decision == "broken":
            return web.Response(status=500, text="oops")
        return web.Response(status=204)

    def events(self, event: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["event"] == event]

    def close(self) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
