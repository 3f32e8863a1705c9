"""tus-js-client's browser build in Debian's chromium (playwright-core,
tests/js/ietf_browser.mjs) speaking the IETF drafts to the gateway: the
whole file in the creation request (the browser's network stack meets the
104), and in chunks; byte-identical by SHA-256."""

from __future__ import annotations

import hashlib
import json

import requests

from tests.support.browser import run_browser_script
from testservers.gateway import GatewayProcess

MiB = 1024 * 1024


UPLOADS = [
    {"protocol": protocol, "options": options}
    for protocol in ("ietf-draft-03", "ietf-draft-05")
    for options in ({"uploadDataDuringCreation": True}, {"chunkSize": MiB + 3})
]


def test_chromium_uploads(rules_gateway: GatewayProcess) -> None:
    args = {"base": rules_gateway.url, "size": 3 * MiB + 5, "uploads": UPLOADS}
    result = run_browser_script("ietf_browser.mjs", json.dumps(args))
    assert result["ok"], result.get("error")
    assert len(result["uploads"]) == len(UPLOADS)
    for upload, done in zip(UPLOADS, result["uploads"], strict=True):
        got = requests.get(done["url"], timeout=60).content
        assert hashlib.sha256(got).hexdigest() == done["sha256"], upload
