"""Form files whose token comes first are written once, straight to their key
(S3: one PutObject, no copy, no delete), and only after every check the put
policy makes once the bytes are in: a refused file never reaches the store.
A file above ``qiniu.form_buffer`` is streamed and moved as before. The
store's work is read from the gateway's own ``/metrics``."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator

import pytest
import qiniu
import requests

from tests.observability.scrape import Samples, delta, scrape, scrape_when
from tests.qiniu.harness import BUCKET, MiB, qiniu_config, read_back, region, sha256, token
from tests.qiniu.test_qiniu_raw import multipart, post_form
from tests.support.targets import Target
from testservers.gateway import GatewayProcess

CALLS = "upload_gateway_backend_request_duration_seconds_count"


def _store_calls(before: Samples, after: Samples, *operations: str) -> float:
    return sum(delta(before, after, CALLS, operation=op) for op in operations)


def _answered(gw: GatewayProcess, before: Samples, count: int) -> Samples:
    return scrape_when(
        gw.url,
        lambda s: delta(before, s, "upload_gateway_requests_total", method="POST") >= count,
    )


def test_sdk_form_file_is_one_write_on_its_key(qgw: GatewayProcess, target: Target) -> None:
    data = os.urandom(MiB + 3)
    before = scrape(qgw.url)
    ret, info = qiniu.put_data(
        token("direct/sdk.bin"), "direct/sdk.bin", data, regions=[region(qgw)]
    )
    assert info.status_code == 200, info
    assert ret["key"] == "direct/sdk.bin"
    after = _answered(qgw, before, 1)
    assert read_back(qgw, "direct/sdk.bin") == sha256(data)
    # nothing copied or moved inside the store, on any backend
    assert _store_calls(before, after, "copy_object", "upload_part_copy", "copy") == 0
    if target.name.startswith("s3"):
        assert _store_calls(before, after, "put_object") == 1
        assert _store_calls(before, after, "delete_object", "create_multipart_upload") == 0
        assert _store_calls(before, after, "head_object") == 0  # overwrite allowed: no stat
    assert target.leftovers() == []


@pytest.mark.parametrize(
    "case",
    ["crc32", "fsizeLimit", "fsizeMin", "mimeLimit", "insertOnly", "saveKey"],
)
def test_refused_form_file_never_reaches_the_store(
    qgw: GatewayProcess, target: Target, case: str
) -> None:
    data = b"%PDF-1.4 " + os.urandom(200_000)
    key = f"direct/refused-{case}.bin"
    fields: list[tuple[str, str | bytes]] = [("key", key)]
    policy: dict[str, object] = {}
    if case == "crc32":
        fields.append(("crc32", str(zlib.crc32(data) ^ 1)))
    elif case == "fsizeLimit":
        policy["fsizeLimit"] = 100_000  # exceeded while the file is held
    elif case == "fsizeMin":
        policy["fsizeMin"] = 300_000
    elif case == "mimeLimit":
        policy.update(mimeLimit="image/*", detectMime=1)  # sniffed: application/pdf
    elif case == "insertOnly":
        old = os.urandom(1000)
        r = post_form(qgw, multipart([("token", token()), ("key", key), ("file", old)]))
        assert r.status_code == 200, r.text
        policy["insertOnly"] = 1
    elif case == "saveKey":
        policy["forceSaveKey"] = True
        policy["saveKey"] = "../escape"
    expected = {
        "crc32": 406,
        "fsizeLimit": 413,
        "fsizeMin": 403,
        "mimeLimit": 403,
        "insertOnly": 614,
        "saveKey": 400,
    }[case]
    before = scrape(qgw.url)
    body = multipart([("token", token(**policy)), *fields, ("file", data)])
    r = post_form(qgw, body)
    assert r.status_code == expected, r.text
    after = _answered(qgw, before, 1)
    written = _store_calls(
        before, after, "put_object", "create_multipart_upload", "upload_part", "put", "write"
    )
    assert written == 0, "a refused file was sent to the store"
    got = requests.get(f"{qgw.url}/objects/{BUCKET}/{key}", timeout=30)
    if case == "insertOnly":
        assert got.status_code == 200 and got.content == old
    else:
        assert got.status_code == 404
    assert target.leftovers() == []


@pytest.fixture(scope="module")
def small_buffer_gw(target: Target) -> Iterator[GatewayProcess]:
    with GatewayProcess(qiniu_config(target, form_buffer=64 * 1024)) as gw:
        yield gw


def test_form_file_above_the_buffer_is_streamed(
    small_buffer_gw: GatewayProcess, target: Target
) -> None:
    gw = small_buffer_gw
    data = os.urandom(MiB + 11)
    _, info = qiniu.put_data(token(), "direct/big.bin", data, regions=[region(gw)])
    assert info.status_code == 200, info
    assert read_back(gw, "direct/big.bin") == sha256(data)
    body = multipart(
        [("token", token(fsizeLimit=500_000)), ("key", "direct/big-refused.bin"), ("file", data)]
    )
    r = post_form(gw, body)
    assert r.status_code == 413, r.text
    assert (
        requests.get(f"{gw.url}/objects/{BUCKET}/direct/big-refused.bin", timeout=30).status_code
        == 404
    )
    assert target.leftovers() == []
