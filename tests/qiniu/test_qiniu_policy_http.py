"""Put-policy behaviour over real HTTP with the official SDK: returnBody,
callbacks (and 579), returnUrl, insertOnly (614), deadline (401), scope
(403), buckets (631), saveKey, size and MIME limits."""

from __future__ import annotations

import base64
import json
import os
import time
from urllib.parse import parse_qs, urlsplit

import qiniu
import requests

from tests.qiniu.harness import (
    AK,
    AUTH,
    CallbackServer,
    MiB,
    qiniu_config,
    read_back,
    region,
    sha256,
    token,
)
from tests.support.targets import Target
from testservers.gateway import GatewayProcess


def _put(gw: GatewayProcess, upload_token: str, key: str | None, data: bytes, **kw: object):  # type: ignore[no-untyped-def]
    return qiniu.put_data(upload_token, key, data, regions=[region(gw)], **kw)


def test_return_body_magic_variables(qgw: GatewayProcess) -> None:
    body = (
        '{"key":$(key),"hash":$(etag),"size":$(fsize),"bucket":$(bucket),"mime":$(mimeType),'
        '"fname":$(fname),"ext":$(ext),"who":$(x:who),"user":$(endUser),"url":$(url),'
        '"missing":"$(x:nope)","uuid":$(uuid),"w":$(imageInfo.width)}'
    )
    upload_token = token(returnBody=body, endUser="u-42")
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(1000)
    ret, info = _put(
        qgw,
        upload_token,
        "rb/pic.png",
        data,
        params={"x:who": 'a "quoted" name'},
        fname="orig.png",
    )
    assert info.status_code == 200, info
    assert ret["key"] == "rb/pic.png" and ret["size"] == len(data) and ret["bucket"] == "photos"
    assert ret["mime"] == "image/png" and ret["fname"] == "orig.png" and ret["ext"] == ".png"
    assert ret["who"] == 'a "quoted" name' and ret["user"] == "u-42" and ret["missing"] == ""
    assert ret["url"].startswith("http") and len(ret["uuid"]) == 36
    assert ret["w"] is None
    assert ret["hash"] == qiniu.utils.etag_stream(__import__("io").BytesIO(data))
    assert requests.get(ret["url"], timeout=30).content == data


def test_callback_signed_and_answer_forwarded(qgw: GatewayProcess) -> None:
    with CallbackServer(answer={"biz": "accepted"}) as server:
        upload_token = token(
            callbackUrl=server.url,
            callbackBody="key=$(key)&hash=$(etag)&size=$(fsize)&who=$(x:who)",
            callbackHost="biz.example.com",
        )
        data = os.urandom(5000)
        ret, info = _put(qgw, upload_token, "cb/one.bin", data, params={"x:who": "a&b"})
        assert info.status_code == 200, info
        assert ret["biz"] == "accepted"
        (request,) = server.requests
        assert request["headers"]["Authorization"].startswith(f"QBox {AK}:")
        assert request["headers"]["Host"] == "biz.example.com"
        fields = parse_qs(request["body"])
        assert fields["key"] == ["cb/one.bin"] and fields["who"] == ["a&b"]
        assert fields["size"] == [str(len(data))]
        # the SDK's own check, over the URL as the business server saw it
        url = f"http://biz.example.com{request['path']}"
        assert AUTH.verify_callback(
            request["headers"]["Authorization"],
            url,
            request["body"],
            "application/x-www-form-urlencoded",
        )


def test_json_callback(qgw: GatewayProcess) -> None:
    with CallbackServer() as server:
        upload_token = token(
            callbackUrl=server.url,
            callbackBody='{"key":$(key),"size":$(fsize)}',
            callbackBodyType="application/json",
        )
        ret, info = _put(qgw, upload_token, "cb/json.bin", b"12345")
        assert info.status_code == 200, info
        assert json.loads(ret["echo"]) == {"key": "cb/json.bin", "size": 5}
        assert server.requests[0]["verified"]


def test_callback_failure_is_579_and_object_stays(qgw: GatewayProcess) -> None:
    with CallbackServer(status=500) as server:
        upload_token = token(callbackUrl=server.url, callbackBody="key=$(key)")
        data = os.urandom(2000)
        _, info = _put(qgw, upload_token, "cb/fails.bin", data)
        assert info.status_code == 579, info
        assert "callback failed" in info.text_body
        assert info.req_id
    assert read_back(qgw, "cb/fails.bin") == sha256(data)


def test_return_url_redirects_303(qgw: GatewayProcess) -> None:
    upload_token = token(returnUrl="http://app.example/done?x=1", returnBody='{"k":$(key)}')
    r = requests.post(
        qgw.url + "/",
        files={"file": ("f.txt", b"hello")},
        data={"token": upload_token, "key": "ret/url.txt"},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 303 and r.headers["X-Reqid"]
    location = urlsplit(r.headers["Location"])
    assert location.netloc == "app.example"
    ret = parse_qs(location.query)
    assert ret["x"] == ["1"]
    assert json.loads(base64.urlsafe_b64decode(ret["upload_ret"][0])) == {"k": "ret/url.txt"}


def test_insert_only_614_unless_identical(qgw: GatewayProcess) -> None:
    data = os.urandom(3000)
    assert _put(qgw, token(), "io/file.bin", data)[1].status_code == 200
    # bucket-only scope: inserting the same content again succeeds…
    _, info = _put(qgw, token(), "io/file.bin", data)
    assert info.status_code == 200, info
    # …different content does not
    _, info = _put(qgw, token(), "io/file.bin", os.urandom(3000))
    assert info.status_code == 614 and json.loads(info.text_body) == {"error": "file exists"}
    # bucket:key scope overwrites, unless insertOnly
    _, info = _put(qgw, token("io/file.bin", insertOnly=1), "io/file.bin", b"other")
    assert info.status_code == 614, info
    assert _put(qgw, token("io/file.bin"), "io/file.bin", b"other")[1].status_code == 200
    assert read_back(qgw, "io/file.bin") == sha256(b"other")


def test_insert_only_identical_v2_multipart(
    qgw: GatewayProcess, tmp_path: object, recorder: object
) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "mp.bin"
    path.write_bytes(os.urandom(9 * MiB))
    kw = dict(regions=[region(qgw)], upload_progress_recorder=recorder, part_size=2 * MiB)
    assert qiniu.put_file_v2(token(), "io/mp.bin", str(path), **kw)[1].status_code == 200
    _, info = qiniu.put_file_v2(token(), "io/mp.bin", str(path), **kw)
    assert info.status_code == 200, info  # same content (v2-form hash): accepted


def test_expired_token_401(qgw: GatewayProcess) -> None:
    _, info = _put(qgw, token(expires=-10), "exp/a.bin", b"data")
    assert info.status_code == 401
    assert json.loads(info.text_body) == {"error": "expired token"}


def test_bad_token_401(qgw: GatewayProcess) -> None:
    forged = qiniu.Auth(AK, "wrong-secret").upload_token("photos")
    _, info = _put(qgw, forged, "bad/a.bin", b"data")
    assert info.status_code == 401
    assert json.loads(info.text_body) == {"error": "bad token"}


def test_scope_and_buckets(qgw: GatewayProcess) -> None:
    _, info = _put(qgw, token("only/this"), "only/that", b"x")
    assert info.status_code == 403
    assert json.loads(info.text_body) == {"error": "key doesn't match with scope"}
    _, info = _put(qgw, token("pre/", isPrefixalScope=1), "pre/inside", b"x")
    assert info.status_code == 200, info
    _, info = _put(qgw, token("pre/", isPrefixalScope=1), "elsewhere", b"x")
    assert info.status_code == 403
    _, info = _put(qgw, token(bucket="nope"), "k", b"x")
    assert info.status_code == 631


def test_save_key_and_hash_key(qgw: GatewayProcess) -> None:
    upload_token = token(saveKey="sk/$(year)/$(etag)$(ext)", forceSaveKey=True)
    data = b"save key"
    ret, info = _put(qgw, upload_token, "ignored.txt", data, fname="a.txt")
    assert info.status_code == 200, info
    expected_hash = qiniu.utils.etag_stream(__import__("io").BytesIO(data))
    assert ret["key"] == f"sk/{time.strftime('%Y')}/{expected_hash}.txt"
    # no key, no saveKey: the object is named by its hash
    ret, info = _put(qgw, token(), None, b"named by hash")
    assert info.status_code == 200 and ret["key"] == ret["hash"]


def test_size_and_mime_limits(qgw: GatewayProcess) -> None:
    _, info = _put(qgw, token(fsizeLimit=10), "lim/big", b"x" * 11)
    assert info.status_code == 413, info
    _, info = _put(qgw, token(fsizeMin=10), "lim/small", b"x")
    assert info.status_code == 403, info
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    _, info = _put(qgw, token(mimeLimit="image/*"), "lim/p.png", png)
    assert info.status_code == 200, info
    _, info = _put(qgw, token(mimeLimit="image/*"), "lim/t.png", b"plain text, not a png")
    assert info.status_code == 403, info  # content decides, not the name
    _, info = _put(qgw, token(mimeLimit="!image/png"), "lim/p2", png)
    assert info.status_code == 403, info


def test_post_finish_hook_names_hash_and_url(target: Target) -> None:
    with CallbackServer() as sink:
        config = qiniu_config(target)
        config["hooks"] = [{"url": sink.url, "events": ["post-finish"]}]
        with GatewayProcess(config) as gw:
            data = os.urandom(1000)
            ret, info = _put(gw, token(), "hook/a.bin", data, params={"x:k": "v"})
            assert info.status_code == 200, info
            deadline = time.time() + 10
            while not sink.requests and time.time() < deadline:
                time.sleep(0.05)
    (event,) = [json.loads(r["body"]) for r in sink.requests]
    assert event["event"] == "post-finish" and event["protocol"] == "qiniu"
    assert event["bucket"] == "photos" and event["key"] == "hook/a.bin"
    assert event["size"] == len(data)
    assert event["hash"] == ret["hash"] and event["url"] == ret["url"]
