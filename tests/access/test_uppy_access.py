"""Uppy in Chromium (its browser bundle with @uppy/tus, on a page of another
origin) uploading to a gateway that takes no anonymous uploads: with an
upload token in the tus headers it uploads in chunks, the key coming from
the token's saveKey; without one it is refused; the upload URL it got
answers only its owner. Local disk only: the browser adds nothing a backend
would see differently (tests/access runs the same requests on every backend)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.access.support import access_config, auth, uptoken
from tests.conftest import get_target
from tests.support.browser import run_browser_script
from tests.tus.helpers import TUS
from testservers.gateway import GatewayProcess

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def gw() -> Iterator[GatewayProcess]:
    with GatewayProcess(access_config(get_target("local"))) as gateway:
        yield gateway


def _uppy(gw: GatewayProcess, token: str | None, *files: Path) -> dict[str, object]:
    args = {
        "endpoint": gw.files_url,
        "token": token,
        "files": [str(f) for f in files],
        "chunkSize": MiB,
    }

    result = run_browser_script("uppy_browser.mjs", json.dumps(args))
    assert result["ok"], result.get("error")
    return result


def test_uppy_uploads_with_a_token_and_is_refused_without(
    gw: GatewayProcess, tmp_path: Path
) -> None:
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(os.urandom(3 * MiB + 17))
    token = uptoken(endUser="dora", saveKey="u/$(endUser)/$(fname)")
    result = _uppy(gw, token, photo)
    assert result["failed"] == [], result
    [done] = result["successful"]  # type: ignore[misc]
    url = done["url"]
    assert int(str(result["progressEvents"])) >= 4  # one per 1 MiB chunk at least
    r = requests.get(url, headers=auth(token), timeout=30)
    assert r.status_code == 200 and r.content == photo.read_bytes()
    object_url = requests.head(url, headers={**TUS, **auth(token)}, timeout=30).headers[
        "X-Object-Url"
    ]
    assert urlsplit(object_url).path.endswith("/u/dora/holiday.jpg")
    # the URL answers only its owner: another user's token, or none, learns nothing
    other = uptoken(endUser="eve")
    assert requests.head(url, headers={**TUS, **auth(other)}, timeout=30).status_code == 404
    assert requests.head(url, headers=TUS, timeout=30).status_code == 404
    # without a token Uppy's upload fails with the gateway's 401
    refused = _uppy(gw, None, photo)
    assert refused["successful"] == []
    [failure] = refused["failed"]  # type: ignore[misc]
    assert "401" in failure["error"], failure
