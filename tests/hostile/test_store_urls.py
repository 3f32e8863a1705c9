"""Class 6 of issue 15 for objects the store itself serves: a presigned S3
URL or a Swift temp URL of an object whose type is not inline-safe answers
``Content-Disposition: attachment`` (a browser saves it, never renders it
from the store's origin); an inline-safe type is served inline. The stores'
own mechanisms do it: S3's signed ``response-content-disposition``, Swift
tempurl's ``inline`` (attachment is its default). Neither store can add
``X-Content-Type-Options: nosniff`` to its answers.

Runs on every selected S3 target (presigned URLs) and on Swift (temp URLs);
local disk and FastDFS are served by the gateway or the operator's HTTP
server."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator

import pytest
import qiniu
import requests
from tusclient import client as tus

from tests.hostile.test_keys import SERVABLE
from tests.qiniu.harness import qiniu_config, region, token
from tests.support.targets import Target
from testservers.gateway import GatewayProcess

NO_PROXY = {"http": "", "https": ""}
#: (type stored, how the store must serve it)
CASES = [
    ("text/html", "attachment"),
    ("image/svg+xml", "attachment"),
    ("application/octet-stream", "attachment"),
    ("image/png", "inline"),
    ("application/pdf", "inline"),
]


@pytest.fixture(scope="module")
def store_urls(target: Target) -> Iterator[GatewayProcess]:
    if target.name.startswith("s3"):
        config = qiniu_config(target)
        config["backends"]["default"]["url"] = {"mode": "presigned"}
    elif target.name == "swift":
        config = qiniu_config(target)  # temp URLs: the Swift backend's default
    else:
        pytest.skip("the gateway serves this store's objects itself (test_header_values)")
    with GatewayProcess(config) as gw:
        yield gw


def _disposition(url: str, gw: GatewayProcess) -> str:
    assert not url.startswith(gw.url), f"not a URL of the store: {url}"
    served = requests.get(url, timeout=30, proxies=NO_PROXY)
    assert served.status_code == 200, (served.status_code, served.text[:200])
    return served.headers.get("Content-Disposition", "").split(";")[0].strip()


@pytest.mark.parametrize(("mime", "expected"), CASES)
def test_tus_object_url(store_urls: GatewayProcess, mime: str, expected: str) -> None:
    data = b"<html><script>alert(document.domain)</script></html>" + os.urandom(100)
    uploader = tus.TusClient(store_urls.files_url).uploader(
        file_stream=io.BytesIO(data), metadata={"filetype": mime}
    )
    uploader.upload()
    assert uploader.url is not None
    answer = requests.head(uploader.url, headers={"Tus-Resumable": "1.0.0"}, timeout=30)
    got = _disposition(answer.headers["X-Object-Url"], store_urls)
    # absent means inline to a browser
    assert (got or "inline") == expected, got


@pytest.mark.parametrize(("mime", "expected"), CASES)
def test_qiniu_object_url(store_urls: GatewayProcess, mime: str, expected: str) -> None:
    key = f"store-url-{mime.replace('/', '-')}"
    body = b"<html><script>alert(document.domain)</script></html>"
    ret, info = qiniu.put_data(token(), key, body, mime_type=mime, regions=[region(store_urls)])
    assert info.status_code == 200, info
    got = _disposition(ret["url"], store_urls)
    assert (got or "inline") == expected, got


@pytest.mark.parametrize("key", SERVABLE)
def test_the_store_url_of_an_object_serves_exactly_that_object(
    store_urls: GatewayProcess, key: str
) -> None:
    """Class 5 on the store's own URLs: a presigned S3 URL or a Swift temp
    URL of a key with spaces, ``?``, ``#``, ``%2E%2E``, empty segments or
    non-ASCII text fetches that object and no other."""
    data = os.urandom(2048)
    ret, info = qiniu.put_data(token(), key, data, regions=[region(store_urls)])
    assert info.status_code == 200, info
    assert not ret["url"].startswith(store_urls.url), ret["url"]
    got = requests.get(ret["url"], timeout=30, proxies=NO_PROXY)
    assert got.status_code == 200, (ret["url"], got.status_code, got.text[:300])
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
