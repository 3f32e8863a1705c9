"""Webhooks: post-create, post-finish exactly once, post-terminate."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import gateway_config
from tests.support.targets import Target
from tests.tus.helpers import TUS, create, patch
from testservers.gateway import GatewayProcess


class HookSink:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, upload_id: str) -> list[str]:
        return [e["event"] for e in self.received if e["id"] == upload_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sink() -> Iterator[HookSink]:
    s = HookSink()
    yield s
    s.close()


@pytest.fixture(scope="module")
def hooked_gateway(target: Target, sink: HookSink) -> Iterator[GatewayProcess]:
    hooks = [{"url": sink.url, "events": ["post-create", "post-finish", "post-terminate"]}]
    with GatewayProcess(gateway_config(target, hooks=hooks)) as gw:
        yield gw


def wait_for(predicate: Any, timeout: float = 10) -> None:
    deadline = time.time() + timeout
    while not predicate() and time.time() < deadline:
        time.sleep(0.05)


def test_post_finish_fires_exactly_once(hooked_gateway: GatewayProcess, sink: HookSink) -> None:
    url = create(hooked_gateway.files_url, 6, {"filename": "h.txt"})
    upload_id = url.rsplit("/", 1)[1]
    assert patch(url, 0, b"abc").status_code == 204
    r = patch(url, 3, b"def")
    assert r.status_code == 204
    object_url = r.headers["X-Object-Url"]
    requests.head(url, headers=TUS, timeout=10)
    wait_for(lambda: "post-finish" in sink.events(upload_id))
    time.sleep(0.5)  # a duplicate would arrive by now
    assert sink.events(upload_id) == ["post-create", "post-finish"]
    finish = next(e for e in sink.received if e["id"] == upload_id and e["event"] == "post-finish")
    assert finish["size"] == 6 and finish["protocol"] == "tus"
    assert finish["sha256"] == hashlib.sha256(b"abcdef").hexdigest()  # hashed as bytes passed
    assert finish["metadata"] == {"filename": "h.txt"}
    # the same object: a store's temp URL is signed when made (its query may differ)
    assert urlsplit(finish["url"]).path == urlsplit(object_url).path


def test_post_terminate(hooked_gateway: GatewayProcess, sink: HookSink) -> None:
    url = create(hooked_gateway.files_url, 6)
    upload_id = url.rsplit("/", 1)[1]
    assert requests.delete(url, headers=TUS, timeout=10).status_code == 204
    wait_for(lambda: "post-terminate" in sink.events(upload_id))
    assert sink.events(upload_id) == ["post-create", "post-terminate"]
