"""A tus upload named by its content: a token's ``saveKey`` with ``$(etag)`` /
``$(hash)`` (Qiniu's qetag, computed while the bytes pass). The key is
decided when the last byte is in; the qiniu SDK's ``etag`` is the reference."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import qiniu
import requests
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError

from tests.access.support import auth, tus_create, uptoken
from tests.support.cutproxy import CutProxy
from tests.tus.helpers import OCTET, TUS
from tests.tus.test_tus_js_client import run_tus_js
from testservers.gateway import GatewayProcess

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("etag") / "photo.jpg"
    path.write_bytes(os.urandom(9 * MiB + 321))  # three qetag blocks
    return path


def _head(url: str, token: str) -> requests.Response:
    return requests.head(url, headers={**TUS, **auth(token)}, timeout=30)


def _names(object_url: str, key: str) -> bool:
    """Whether the object URL (the gateway's or the store's own) is of ``key``."""
    return unquote(urlsplit(object_url).path).endswith("/" + key)


def _tuspy(files_url: str, source: Path, token: str, retries: int = 3) -> tus.Uploader:
    client = tus.TusClient(files_url, headers=auth(token))
    uploader = client.uploader(
        str(source), chunk_size=2 * MiB, retries=retries, retry_delay=0.2,
        metadata={"filename": source.name},
    )  # fmt: skip
    uploader.set_url(uploader.create_url())
    return uploader


def test_tuspy_upload_is_named_by_its_qetag(agw: GatewayProcess, source: Path) -> None:
    run = os.urandom(4).hex()
    token = uptoken(endUser="alice", saveKey=f"e{run}/$(endUser)/$(etag)$(ext)")
    with CutProxy(agw.port) as proxy:
        uploader = _tuspy(proxy.url + "/files/", source, token)
        url = uploader.url.replace(proxy.url, agw.url)
        # no key before the bytes: no object URL either
        r = _head(url, token)
        assert r.status_code == 200 and "X-Object-Url" not in r.headers
        proxy.cut_next_after(MiB)  # inside the first PATCH: tuspy resumes
        uploader.upload()
        assert proxy.cuts == 1
    object_url = _head(url, token).headers["X-Object-Url"]
    assert _names(object_url, f"e{run}/alice/{qiniu.etag(str(source))}.jpg")
    assert requests.get(object_url, timeout=60).content == source.read_bytes()


def test_an_existing_key_is_not_replaced(agw: GatewayProcess, source: Path) -> None:
    """insertOnly: the key of the content's qetag holds another object; the
    upload is refused at its last PATCH and nothing of it is committed."""
    key = f"i{os.urandom(4).hex()}/{qiniu.etag(str(source))}"
    there = uptoken(key=key)  # bucket:key may write anything there
    r = tus_create(agw.files_url, 5, there)
    headers = {**TUS, **OCTET, "Upload-Offset": "0", **auth(there)}
    r = requests.patch(r.headers["Location"], data=b"first", headers=headers, timeout=30)
    assert r.status_code == 204, r.text
    object_url = r.headers["X-Object-Url"]

    token = uptoken(saveKey=key.split("/")[0] + "/$(hash)", insertOnly=1)
    uploader = _tuspy(agw.files_url, source, token, retries=0)
    with pytest.raises(TusCommunicationError) as refused:
        uploader.upload()
    assert refused.value.status_code == 403
    assert uploader.offset >= 8 * MiB  # it got to the last PATCH
    assert _head(uploader.url, token).status_code == 410
    assert requests.get(object_url, timeout=30).content == b"first"


def test_creation_rules(agw: GatewayProcess) -> None:
    # an empty upload is named at its creation
    r = tus_create(agw.files_url, 0, uptoken(saveKey="$(etag)"))
    assert r.status_code == 201, r.text
    assert _names(r.headers["X-Object-Url"], "Fto5o-5ea0sNMlW_75VgGJCv2AcJ")  # qetag of b""
    # a prefixal scope must hold the key of any qetag
    prefixal = {"key": "p/", "isPrefixalScope": 1}
    assert tus_create(agw.files_url, 3, uptoken(saveKey="p/$(etag)", **prefixal)).status_code == 201
    for save_key in ("q/$(etag)", "$(etag)", "p$(etag)"):
        assert (
            tus_create(agw.files_url, 3, uptoken(saveKey=save_key, **prefixal)).status_code == 403
        )
    r = tus_create(agw.files_url, 3, uptoken(key="k", saveKey="$(etag)", forceSaveKey=True))
    assert r.status_code == 403
    # concatenation cannot be named by it
    part = tus_create(agw.files_url, 1, uptoken()).headers["Location"]
    headers = {**TUS, "Upload-Concat": f"final;{part}", **auth(uptoken(saveKey="$(etag)"))}
    assert requests.post(agw.files_url, headers=headers, timeout=30).status_code == 400


def test_tus_js_client_upload_is_named_by_its_qetag(agw: GatewayProcess, source: Path) -> None:
    token = uptoken(saveKey=f"js{os.urandom(4).hex()}/$(etag)")
    url = run_tus_js(agw.files_url, source, {"headers": auth(token), "chunkSize": 4_000_000})
    object_url = _head(url, token).headers["X-Object-Url"]
    assert _names(object_url, qiniu.etag(str(source)))
    assert requests.get(object_url, timeout=60).content == source.read_bytes()
