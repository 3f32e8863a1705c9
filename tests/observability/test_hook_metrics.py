"""Hook metrics: webhook deliveries (post-*) and synchronous hook calls
(pre-*) counted per event, failures apart; a refusal is an answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.observability.scrape import delta, scrape, scrape_when, value
from testservers.gateway import GatewayProcess
from testservers.ports import free_port

TUS = {"Tus-Resumable": "1.0.0"}
P = "upload_gateway_"


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    """Answers every hook 200, but refuses pre-create for uploads named "no"."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            refused = (
                body["event"] == "pre-create" and body.get("metadata", {}).get("filename") == "no"
            )
            self.send_response(403 if refused else 200)
            self.end_headers()
            self.wfile.write(b"not this one\n" if refused else b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_hook_calls_counted(receiver: str, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    config = {
        "backends": {"default": {"type": "local", "root": str(tmp_path / "data")}},
        "buckets": {"default": {"backend": "default"}},
        "hooks": [
            {"url": receiver, "events": ["pre-create", "post-create", "post-finish"]},
            {"url": dead, "events": ["post-finish"], "retries": 1, "timeout": 2},
        ],
    }
    with GatewayProcess(config) as gw:
        before = scrape(gw.url)
        ok = requests.post(
            gw.files_url, headers={**TUS, "Upload-Length": "0", "Upload-Metadata": "filename eWVz"},
            timeout=10,
        )  # fmt: skip
        assert ok.status_code == 201
        refused = requests.post(
            gw.files_url, headers={**TUS, "Upload-Length": "0", "Upload-Metadata": "filename bm8="},
            timeout=10,
        )  # fmt: skip
        assert refused.status_code == 403
        # the dead hook: 2 attempts, 0.5 s apart
        after = scrape_when(
            gw.url, lambda s: delta(before, s, P + "hook_errors_total", event="post-finish") >= 2
        )
        # the delivery that gave up leaves the queue (after its last back-off)
        drained = scrape_when(gw.url, lambda s: value(s, P + "webhook_queue_depth") == 0)
    assert delta(before, after, P + "hook_invocations_total", event="pre-create") == 2
    assert delta(before, after, P + "hook_errors_total", event="pre-create") == 0
    assert delta(before, after, P + "hook_invocations_total", event="post-create") == 1
    # post-finish: once to the receiver, twice to the dead URL
    assert delta(before, after, P + "hook_invocations_total", event="post-finish") == 3
    assert delta(before, after, P + "hook_errors_total", event="post-finish") == 2
    assert value(drained, P + "webhook_queue_depth") == 0
