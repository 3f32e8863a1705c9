"""Class 9 of issue 15: a malformed ``callbackUrl`` in a signed policy fails
the upload with Qiniu's documented 579 (not 599), a later URL of the list is
still tried, and a malformed ``returnUrl`` is refused with 400 up front."""

from __future__ import annotations

import pytest
import qiniu
import requests

from tests.qiniu.harness import CallbackServer, region, token
from testservers.gateway import GatewayProcess

MALFORMED = [
    "http://[::1",
    "http://x:99999/",
    "ftp://example.org/",
    "http://a b/",
    "/relative",
    "http://h/\r\nX: y",
]


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_callback_url_is_579(pgw: GatewayProcess, url: str) -> None:
    r = requests.post(
        pgw.url + "/",
        files={"file": ("a.txt", b"abc")},
        data={"token": token(callbackUrl=url, callbackBody="k=$(key)"), "key": "cb-bad"},
        timeout=30,
    )
    assert r.status_code == 579, (r.status_code, r.text)
    assert "callback failed" in r.json()["error"]
    assert "Traceback" not in pgw.log()


def test_the_next_callback_url_is_tried_with_the_sdk(pgw: GatewayProcess) -> None:
    with CallbackServer() as server:
        upload_token = token(
            "cb-next",
            callbackUrl=f"http://[::1;{server.url}",
            callbackBody="key=$(key)",
        )
        ret, info = qiniu.put_data(upload_token, "cb-next", b"hello", regions=[region(pgw)])
        assert info.status_code == 200, info
        assert ret["echo"] == "key=cb-next"
        assert len(server.requests) == 1 and server.requests[0]["verified"]


@pytest.mark.parametrize(
    "url", ["http://[::1", "javascript:alert(1)", "http://h/\r\nSet-Cookie: a=b"]
)
def test_malformed_return_url_is_400(pgw: GatewayProcess, url: str) -> None:
    r = requests.post(
        pgw.url + "/",
        files={"file": ("a.txt", b"abc")},
        data={"token": token(returnUrl=url), "key": "ret-bad"},
        timeout=30,
        allow_redirects=False,
    )
    assert r.status_code == 400, (r.status_code, r.text)
    assert "returnUrl" in r.json()["error"]
