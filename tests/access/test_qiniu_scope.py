"""Issue 15 class 8: a Qiniu token's deadline and scope are checked on every
request that uses it (the qiniu SDK and raw requests); a v1 ctx or v2
uploadId works only with a token of the same scope and endUser; each
protocol sees only its own records."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import qiniu
import requests

from tests.qiniu.harness import AUTH, BUCKET, MiB, qiniu_config, region, token
from tests.support.targets import Target
from tests.tus.helpers import TUS
from testservers.gateway import GatewayProcess


@pytest.fixture(scope="module")
def qgw(target: Target) -> Iterator[GatewayProcess]:
    with GatewayProcess(qiniu_config(target)) as gw:
        yield gw


def _auth(upload_token: str) -> dict[str, str]:
    return {"Authorization": f"UpToken {upload_token}"}


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _v2(gw: GatewayProcess, key: str, *rest: object) -> str:
    base = f"{gw.url}/buckets/{BUCKET}/objects/{_b64(key)}/uploads"
    return "/".join([base, *map(str, rest)])


def _short_lived(key: str | None = None, seconds: int = 2, **policy: object) -> str:
    return token(key, expires=seconds, **policy)


def test_expired_token_refused_by_every_v1_call(qgw: GatewayProcess) -> None:
    short = _short_lived(seconds=2)
    r = requests.post(f"{qgw.url}/mkblk/4", data=b"0123", headers=_auth(short), timeout=30)
    assert r.status_code == 200, r.text
    ctx = r.json()["ctx"]
    time.sleep(3)
    r = requests.post(f"{qgw.url}/bput/{ctx}/4", data=b"x", headers=_auth(short), timeout=30)
    assert (r.status_code, r.json()["error"]) == (401, "expired token")
    r = requests.post(f"{qgw.url}/mkblk/4", data=b"0123", headers=_auth(short), timeout=30)
    assert (r.status_code, r.json()["error"]) == (401, "expired token")


def test_expired_token_refused_by_every_v2_call(qgw: GatewayProcess) -> None:
    key = f"scope/{os.urandom(4).hex()}"
    short = _short_lived(key, seconds=2)
    r = requests.post(_v2(qgw, key), headers=_auth(short), timeout=30)
    assert r.status_code == 200, r.text
    upload_id = r.json()["uploadId"]
    time.sleep(3)
    r = requests.put(_v2(qgw, key, upload_id, 1), data=b"x", headers=_auth(short), timeout=30)
    assert (r.status_code, r.json()["error"]) == (401, "expired token")
    r = requests.post(_v2(qgw, key), headers=_auth(short), timeout=30)
    assert (r.status_code, r.json()["error"]) == (401, "expired token")


def test_sdk_with_an_expired_token_gets_401(qgw: GatewayProcess, tmp_path: Path) -> None:
    source = tmp_path / "five.bin"
    source.write_bytes(os.urandom(5 * MiB))
    expired = str(AUTH.upload_token(BUCKET, "sdk-expired", -10))
    for version in ("v1", "v2"):
        ret, info = qiniu.put_file_v2(
            expired, "sdk-expired", str(source), regions=[region(qgw)], version=version
        )
        assert ret is None and info.status_code == 401, (version, info)


def test_v2_upload_id_needs_a_token_of_its_key(qgw: GatewayProcess) -> None:
    victim = f"victim/{os.urandom(4).hex()}"
    r = requests.post(_v2(qgw, victim), headers=_auth(token(victim)), timeout=30)
    upload_id = r.json()["uploadId"]
    attacker = token(f"mine/{os.urandom(4).hex()}")
    # the attacker's token names another key: 612 whatever key the URL claims
    r = requests.put(_v2(qgw, victim, upload_id, 1), data=b"x", headers=_auth(attacker), timeout=30)
    assert (r.status_code, r.json()["error"]) == (612, "no such uploadId")
    r = requests.get(_v2(qgw, victim, upload_id), headers=_auth(attacker), timeout=30)
    assert r.status_code == 612
    # another endUser with the same scope is a stranger too
    owned = f"owned/{os.urandom(4).hex()}"
    r = requests.post(_v2(qgw, owned), headers=_auth(token(owned, endUser="a")), timeout=30)
    upload_id = r.json()["uploadId"]
    other = _auth(token(owned, endUser="b"))
    r = requests.put(_v2(qgw, owned, upload_id, 1), data=b"x", headers=other, timeout=30)
    assert r.status_code == 612
    mine = _auth(token(owned, endUser="a"))
    r = requests.put(_v2(qgw, owned, upload_id, 1), data=b"x", headers=mine, timeout=30)
    assert r.status_code == 200, r.text


def test_v1_ctx_needs_a_token_of_its_scope(qgw: GatewayProcess) -> None:
    one = token(f"k1/{os.urandom(4).hex()}")
    r = requests.post(f"{qgw.url}/mkblk/8", data=b"0123", headers=_auth(one), timeout=30)
    assert r.status_code == 200, r.text
    ctx = r.json()["ctx"]
    two = token(f"k2/{os.urandom(4).hex()}")
    r = requests.post(f"{qgw.url}/bput/{ctx}/4", data=b"4567", headers=_auth(two), timeout=30)
    assert (r.status_code, r.json()["error"]) == (701, "invalid context")
    r = requests.post(f"{qgw.url}/bput/{ctx}/4", data=b"4567", headers=_auth(one), timeout=30)
    assert r.status_code == 200, r.text


def _block_id(ctx: str) -> str:
    payload = ctx.split(".", 1)[0]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["s"])


def test_tus_refuses_ids_of_qiniu_records(qgw: GatewayProcess) -> None:
    """Neither tus nor the IETF protocol (same path) reaches a Qiniu v1 block
    or v2 session."""
    upload_token = token()
    r = requests.post(f"{qgw.url}/mkblk/4", data=b"0123", headers=_auth(upload_token), timeout=30)
    block = _block_id(r.json()["ctx"])
    key = f"tus-probe/{os.urandom(4).hex()}"
    r = requests.post(_v2(qgw, key), headers=_auth(token(key)), timeout=30)
    session = r.json()["uploadId"]
    for upload_id in (block, session, f"{session}-1"):
        url = f"{qgw.files_url}{upload_id}"
        assert requests.head(url, headers=TUS, timeout=30).status_code == 404
        r = requests.patch(
            url,
            data=b"x",
            headers={
                **TUS,
                "Upload-Offset": "4",
                "Content-Type": "application/offset+octet-stream",
            },
            timeout=30,
        )
        assert r.status_code == 404
        assert requests.delete(url, headers=TUS, timeout=30).status_code == 404
        # the IETF protocol shares the path and its admission
        assert requests.head(url, timeout=30).status_code == 404
        r = requests.patch(
            url,
            data=b"x",
            headers={
                "Upload-Draft-Interop-Version": "9",
                "Upload-Offset": "4",
                "Upload-Complete": "?1",
                "Content-Type": "application/partial-upload",
            },
            timeout=30,
        )
        assert r.status_code == 404, (r.status_code, r.text)
        assert requests.delete(url, timeout=30).status_code == 404
