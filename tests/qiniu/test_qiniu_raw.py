"""Raw HTTP against the Qiniu endpoints: what SDKs rely on but rarely
exercise — ctx tampering (701), crc32 (406), field order, X-Reqid and CORS on
errors and preflights, v1 chunks continued on a restarted gateway, v2 list /
abort / complete edge cases."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from collections.abc import Iterator

import pytest
import qiniu
import requests

from tests.qiniu.harness import BUCKET, MiB, qiniu_config, read_back, sha256, stream_files, token
from tests.support.targets import Target
from testservers.gateway import GatewayProcess


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode()


def auth(upload_token: str) -> dict[str, str]:
    return {"Authorization": f"UpToken {upload_token}"}


def qetag(data: bytes) -> str:
    return str(qiniu.utils.etag_stream(__import__("io").BytesIO(data)))


def error_of(r: requests.Response) -> str:
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers.get("X-Reqid") and r.headers.get("X-Log")
    return str(r.json()["error"])


# -- v1 ------------------------------------------------------------------------
def mkblk(gw: GatewayProcess, upload_token: str, size: int, first: bytes) -> dict[str, object]:
    r = requests.post(f"{gw.url}/mkblk/{size}", data=first, headers=auth(upload_token), timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def bput(
    gw: GatewayProcess, upload_token: str, ctx: str, offset: int, data: bytes
) -> requests.Response:
    return requests.post(
        f"{gw.url}/bput/{ctx}/{offset}", data=data, headers=auth(upload_token), timeout=30
    )


def test_mkblk_answer_and_tampered_ctx(qgw: GatewayProcess) -> None:
    upload_token = token()
    chunk = os.urandom(MiB)
    ret = mkblk(qgw, upload_token, 2 * MiB, chunk)
    assert ret["crc32"] == zlib.crc32(chunk) and ret["offset"] == MiB
    assert ret["checksum"] == b64(hashlib.sha1(chunk).digest())
    assert ret["host"] == qgw.url and int(str(ret["expired_at"])) > 0
    ctx = str(ret["ctx"])
    payload, sig = ctx.split(".")
    tampered = payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + sig
    for bad_ctx, offset in [(tampered, MiB), (ctx, 0), (ctx[:-2], MiB)]:
        r = bput(qgw, upload_token, bad_ctx, offset, b"more")
        assert r.status_code == 701 and error_of(r) == "invalid context"
    r = requests.post(
        f"{qgw.url}/mkfile/{2 * MiB}", data=tampered, headers=auth(upload_token), timeout=30
    )
    assert r.status_code == 701 and error_of(r) == "invalid context"
    # a stale ctx: the block moved on
    r = bput(qgw, upload_token, ctx, MiB, os.urandom(MiB))
    assert r.status_code == 200
    r = bput(qgw, upload_token, ctx, MiB, b"again")
    assert r.status_code == 701


def test_v1_chunks_continue_after_restart_and_mkfile_params(
    target: Target, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Android-style 1 MiB chunks; the gateway restarts mid-block, so the next
    bput is served by a process that never saw the block's first bytes."""
    data = os.urandom(4 * MiB + 3 * MiB)
    blocks = [data[: 4 * MiB], data[4 * MiB :]]
    upload_token = token()
    with GatewayProcess(qiniu_config(target)) as gw:
        ctxs = []
        for i, block in enumerate(blocks):
            ret = mkblk(gw, upload_token, len(block), block[:MiB])
            if i == 0:
                gw.restart()
            offset = MiB
            while offset < len(block):
                r = bput(gw, upload_token, str(ret["ctx"]), offset, block[offset : offset + MiB])
                assert r.status_code == 200, r.text
                ret = r.json()
                offset += MiB
            assert ret["checksum"] == b64(hashlib.sha1(block).digest())
            ctxs.append(str(ret["ctx"]))
        # path pairs in another order than the SDKs', base64 without padding
        params = "/".join(
            [
                "x:note",
                b64("ünïcode").rstrip("="),
                "fname",
                b64("orig.bin"),
                "key",
                b64("raw/chunks.bin").rstrip("="),
                "mimeType",
                b64("application/x-test"),
            ]
        )
        r = requests.post(
            f"{gw.url}/mkfile/{len(data)}/{params}",
            data=",".join(ctxs),
            headers=auth(
                token(returnBody='{"k":$(key),"h":$(etag),"n":$(x:note),"m":$(mimeType)}')
            ),
            timeout=60,
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "k": "raw/chunks.bin",
            "h": qetag(data),
            "n": "ünïcode",
            "m": "application/x-test",
        }
        assert read_back(gw, "raw/chunks.bin") == sha256(data)


def test_mkfile_checks(qgw: GatewayProcess) -> None:
    upload_token = token()
    block = os.urandom(1000)
    ret = mkblk(qgw, upload_token, 2000, block)  # the block is not complete
    r = requests.post(
        f"{qgw.url}/mkfile/1000/key/{b64('x')}",
        data=str(ret["ctx"]),
        headers=auth(upload_token),
        timeout=30,
    )
    assert r.status_code == 701
    ret = mkblk(qgw, upload_token, 1000, block)
    r = requests.post(
        f"{qgw.url}/mkfile/999/key/{b64('x')}",
        data=str(ret["ctx"]),
        headers=auth(upload_token),
        timeout=30,
    )
    assert r.status_code == 400
    other = token(bucket="default")
    r = requests.post(
        f"{qgw.url}/mkfile/1000/key/{b64('x')}",
        data=str(ret["ctx"]),
        headers=auth(other),
        timeout=30,
    )
    assert r.status_code == 701  # a ctx of another bucket
    r = requests.post(
        f"{qgw.url}/mkblk/{8 * MiB}", data=b"x", headers=auth(upload_token), timeout=30
    )
    assert r.status_code == 400
    r = requests.post(f"{qgw.url}/mkblk/10", data=b"x", timeout=30)
    assert r.status_code == 401 and error_of(r) == "bad token"


# -- form ----------------------------------------------------------------------
def multipart(fields: list[tuple[str, str | bytes]], boundary: str = "b0undary") -> bytes:
    out = b""
    for name, value in fields:
        out += f"--{boundary}\r\n".encode()
        if name == "file":
            out += b'Content-Disposition: form-data; name="file"; filename="pic.bin"\r\n'
            out += b"Content-Type: application/octet-stream\r\n\r\n"
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += (value.encode() if isinstance(value, str) else value) + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def post_form(gw: GatewayProcess, body: bytes, chunked: bool = False) -> requests.Response:
    headers = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    data: bytes | Iterator[bytes] = body
    if chunked:
        data = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
    return requests.post(gw.url + "/", data=data, headers=headers, timeout=60)


def test_form_file_first_then_token_chunked(qgw: GatewayProcess) -> None:
    data = os.urandom(3 * MiB + 7)
    body = multipart(
        [
            ("file", data),
            ("token", token()),
            ("key", "form/first.bin"),
            ("crc32", str(zlib.crc32(data))),
            ("x:a", "1"),
        ]
    )
    r = post_form(qgw, body, chunked=True)
    assert r.status_code == 200, r.text
    assert r.json()["hash"] == qetag(data)
    assert read_back(qgw, "form/first.bin") == sha256(data)


def test_form_bad_token_after_file_leaves_nothing(qgw: GatewayProcess, target: Target) -> None:
    before = list(stream_files(target))
    body = multipart([("file", os.urandom(MiB)), ("token", "AK:forged:e30="), ("key", "k")])
    r = post_form(qgw, body)
    assert r.status_code == 401 and error_of(r) == "bad token"
    assert list(stream_files(target)) == before
    assert target.leftovers() == []


def test_form_wrong_crc32_406(qgw: GatewayProcess, target: Target) -> None:
    data = os.urandom(4096)
    for order in ("token-first", "file-first"):
        fields: list[tuple[str, str | bytes]] = [
            ("token", token()),
            ("key", "form/crc.bin"),
            ("crc32", str(zlib.crc32(data) ^ 1)),
        ]
        fields = [*fields, ("file", data)] if order == "token-first" else [("file", data), *fields]
        r = post_form(qgw, multipart(fields))
        assert r.status_code == 406, r.text
    r = requests.get(f"{qgw.url}/objects/{BUCKET}/form/crc.bin", timeout=30)
    assert r.status_code == 404


def test_form_missing_parts(qgw: GatewayProcess) -> None:
    r = post_form(qgw, multipart([("token", token()), ("key", "x")]))
    assert r.status_code == 400 and error_of(r) == "file is missing"
    r = post_form(qgw, multipart([("file", b"abc")]))
    assert r.status_code == 401
    r = requests.post(qgw.url + "/", data=b"not multipart", timeout=30)
    assert r.status_code == 400


# -- headers -------------------------------------------------------------------
def test_reqid_and_cors_everywhere(qgw: GatewayProcess) -> None:
    origin = {"Origin": "http://app.example"}
    for method, path in [
        ("OPTIONS", "/"),
        ("OPTIONS", f"/buckets/{BUCKET}/objects/~/uploads"),
        ("OPTIONS", f"/buckets/{BUCKET}/objects/~/uploads/abc/1"),
        ("OPTIONS", "/mkblk/4"),
    ]:
        r = requests.request(
            method,
            qgw.url + path,
            timeout=30,
            headers={
                **origin,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "authorization, content-md5, x-custom",
            },
        )
        assert r.status_code == 200, (path, r.status_code)
        assert r.headers["X-Reqid"] and r.headers["X-Log"]
        assert r.headers["Access-Control-Allow-Origin"] == "http://app.example"
        allowed = r.headers["Access-Control-Allow-Headers"].lower()
        assert "authorization" in allowed and "content-md5" in allowed and "x-custom" in allowed
        assert "PUT" in r.headers["Access-Control-Allow-Methods"]
    r = requests.post(f"{qgw.url}/mkblk/4", data=b"abcd", headers=origin, timeout=30)
    assert r.status_code == 401 and r.headers["X-Reqid"]
    assert "X-Reqid" in r.headers["Access-Control-Expose-Headers"]
    # a method Qiniu does not serve on its paths is its 405, with the reqid and CORS
    # (GET / is not one: it redirects to the upload page, tests/ui)
    for method, path in [("PUT", "/"), ("GET", "/mkblk/4"), ("DELETE", "/mkfile/4")]:
        r = requests.request(method, qgw.url + path, headers=origin, timeout=30)
        assert r.status_code == 405, (method, path, r.status_code)
        assert r.headers["X-Reqid"] and r.headers["X-Log"]
        assert r.headers["Access-Control-Allow-Origin"] == "http://app.example"
        assert r.json()["error"]


# -- v2 ------------------------------------------------------------------------
def v2_url(gw: GatewayProcess, key: str | None, *rest: object) -> str:
    obj = "~" if key is None else b64(key)
    return "/".join([f"{gw.url}/buckets/{BUCKET}/objects/{obj}/uploads", *map(str, rest)])


def test_v2_list_reupload_complete_with_nulls(qgw: GatewayProcess) -> None:
    upload_token = token()
    key = "v2raw/obj.bin"
    r = requests.post(v2_url(qgw, key), headers=auth(upload_token), timeout=30)
    assert r.status_code == 200, r.text
    upload_id, expire_at = r.json()["uploadId"], r.json()["expireAt"]
    parts = {1: os.urandom(MiB + 5), 3: os.urandom(2 * MiB), 4: os.urandom(100)}
    etags = {}
    for number, data in parts.items():
        md5 = hashlib.md5(data)
        header = md5.hexdigest() if number != 3 else base64.b64encode(md5.digest()).decode()
        r = requests.put(
            v2_url(qgw, key, upload_id, number),
            data=data,
            timeout=30,
            headers={**auth(upload_token), "Content-MD5": header},
        )
        assert r.status_code == 200, r.text
        assert r.json()["md5"] == md5.hexdigest()
        etags[number] = r.json()["etag"]
    # a re-upload replaces part 3
    parts[3] = os.urandom(MiB)
    r = requests.put(
        v2_url(qgw, key, upload_id, 3), data=parts[3], headers=auth(upload_token), timeout=30
    )
    etags[3] = r.json()["etag"]
    r = requests.put(
        v2_url(qgw, key, upload_id, 5),
        data=b"x",
        timeout=30,
        headers={**auth(upload_token), "Content-MD5": hashlib.md5(b"y").hexdigest()},
    )
    assert r.status_code == 406
    r = requests.get(
        v2_url(qgw, key, upload_id) + "?max-parts=2", headers=auth(upload_token), timeout=30
    )
    listing = r.json()
    assert listing["uploadId"] == upload_id and listing["expireAt"] == expire_at
    assert [p["partNumber"] for p in listing["parts"]] == [1, 3]
    assert [p["size"] for p in listing["parts"]] == [len(parts[1]), len(parts[3])]
    assert listing["partNumberMarker"] == 3
    r = requests.get(
        v2_url(qgw, key, upload_id) + "?part-number_marker=3",
        headers=auth(upload_token),
        timeout=30,
    )
    assert [p["partNumber"] for p in r.json()["parts"]] == [4]
    complete = {
        "parts": [{"partNumber": n, "etag": etags[n]} for n in (1, 3, 4)],
        "fname": None,
        "mimeType": None,
        "metadata": None,
        "customVars": None,
    }
    r = requests.post(
        v2_url(qgw, key, upload_id),
        data=json.dumps(complete),
        timeout=60,
        headers={**auth(upload_token), "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    data = parts[1] + parts[3] + parts[4]
    assert read_back(qgw, key) == sha256(data)
    # the session is over
    r = requests.post(
        v2_url(qgw, key, upload_id),
        data=json.dumps(complete),
        headers=auth(upload_token),
        timeout=30,
    )
    assert r.status_code == 612 and error_of(r) == "no such uploadId"


def test_v2_complete_checks_and_abort(qgw: GatewayProcess) -> None:
    upload_token = token()
    r = requests.post(v2_url(qgw, None), headers=auth(upload_token), timeout=30)
    upload_id = r.json()["uploadId"]
    small = requests.put(
        v2_url(qgw, None, upload_id, 1), data=b"a" * 10, headers=auth(upload_token), timeout=30
    )
    last = requests.put(
        v2_url(qgw, None, upload_id, 2), data=b"b" * 10, headers=auth(upload_token), timeout=30
    )

    def complete(parts: list[tuple[int, str]]) -> requests.Response:
        body = {"parts": [{"partNumber": n, "etag": e} for n, e in parts]}
        return requests.post(
            v2_url(qgw, None, upload_id), json=body, headers=auth(upload_token), timeout=30
        )

    assert (
        complete([(1, small.json()["etag"]), (2, last.json()["etag"])]).status_code == 400
    )  # < 1 MiB
    assert (
        complete([(2, last.json()["etag"]), (1, small.json()["etag"])]).status_code == 400
    )  # order
    assert complete([(1, "wrong")]).status_code == 400
    assert complete([(7, "x")]).status_code == 400
    r = requests.put(
        v2_url(qgw, None, upload_id, 10001), data=b"x", headers=auth(upload_token), timeout=30
    )
    assert r.status_code == 400
    r = requests.delete(v2_url(qgw, None, upload_id), headers=auth(upload_token), timeout=30)
    assert r.status_code == 200 and r.headers["X-Reqid"]
    r = requests.put(
        v2_url(qgw, None, upload_id, 3), data=b"x", headers=auth(upload_token), timeout=30
    )
    assert r.status_code == 612 and error_of(r) == "no such uploadId"
    r = requests.get(v2_url(qgw, None, "0" * 32), headers=auth(upload_token), timeout=30)
    assert r.status_code == 612
    r = requests.post(
        f"{qgw.url}/buckets/default/objects/~/uploads", headers=auth(upload_token), timeout=30
    )
    assert r.status_code == 403  # the token is for another bucket
