from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
import qiniu
from aiohttp import web

from gateway.access.tokens import KeyPair
from gateway.protocols.qiniu import callback
from gateway.protocols.qiniu.errors import QiniuError

PAIR = KeyPair("AK", "SK")


async def _serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/cb", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/cb"


def test_signed_callback_verifies_with_sdk() -> None:
    seen: dict[str, str] = {}

    async def handler(request: web.Request) -> web.Response:
        body = await request.text()
        ok = qiniu.Auth(PAIR.access_key, PAIR.secret_key).verify_callback(
            request.headers["Authorization"],
            str(request.url),
            body,
            request.headers["Content-Type"],
        )
        seen.update(body=body, host=request.headers["Host"], ok=str(ok))
        return web.json_response({"accepted": ok})

    async def main() -> bytes:
        runner, url = await _serve(handler)
        try:
            async with aiohttp.ClientSession() as session:
                cb = callback.Callback((url + "?q=1",), "key=a%20b&size=3", None, "biz.example")
                return await callback.send(session, cb, PAIR)
        finally:
            await runner.cleanup()

    answer = asyncio.run(main())
    assert json.loads(answer) == {"accepted": True}
    assert seen == {"body": "key=a%20b&size=3", "host": "biz.example", "ok": "True"}


def test_json_callback_and_fallback_and_failure() -> None:
    async def handler(request: web.Request) -> web.Response:
        data = await request.json()
        ok = qiniu.Auth(PAIR.access_key, PAIR.secret_key).verify_callback(
            request.headers["Authorization"],
            str(request.url),
            "",
            "application/json",
        )
        return web.json_response({"got": data, "ok": ok})

    async def bad(request: web.Request) -> web.Response:
        return web.Response(text="not json")

    async def main() -> tuple[bytes, QiniuError]:
        runner, url = await _serve(handler)
        runner2, bad_url = await _serve(bad)
        try:
            async with aiohttp.ClientSession() as session:
                cb = callback.Callback(
                    ("http://127.0.0.1:1/cb", bad_url, url), '{"k":1}', "application/json"
                )
                answer = await callback.send(session, cb, PAIR, timeout=2)
                with pytest.raises(QiniuError) as info:
                    await callback.send(session, callback.Callback((bad_url,), "a=1"), PAIR)
                return answer, info.value
        finally:
            await runner.cleanup()
            await runner2.cleanup()

    answer, error = asyncio.run(main())
    assert json.loads(answer) == {"got": {"k": 1}, "ok": True}
    assert error.status == 579 and error.message.startswith("callback failed")
    assert callback.body_mode("application/json").value == "json"
