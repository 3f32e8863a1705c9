"""The Swift backend behind a real gateway, driven with tuspy: what ends up in
the account (SLO manifests over segments, nested past 1,000), temp URLs,
nothing orphaned by terminate or expiry, and Swift stopped mid-upload."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from tusclient import client as tus

from tests.conftest import gateway_config
from tests.support.targets import SwiftTarget
from tests.swift.account import NO_PROXY, SwiftAccount
from tests.tus.helpers import TUS, download, offset_of, patch
from testservers.gateway import GatewayProcess
from testservers.swift import SwiftServer

KiB = 1024
MiB = 1024 * KiB


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def uploader_for(files_url: str, path: str, **options: Any) -> Any:
    """A tuspy uploader (untyped, hence Any)."""
    return tus.TusClient(files_url).uploader(path, **options)


def key_of(upload_url: str) -> str:
    return upload_url.rstrip("/").rsplit("/", 1)[-1]


def containers(cfg: dict[str, Any]) -> tuple[str, str]:
    return cfg["container"], cfg["container"] + "_segments"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "source.bin"
    path.write_bytes(os.urandom(9 * MiB + 777))
    return path


@pytest.fixture(scope="module")
def swift_gateway(swift_target: SwiftTarget) -> Iterator[tuple[GatewayProcess, dict[str, Any]]]:
    cfg = swift_target.backend_config()
    with GatewayProcess(gateway_config(swift_target, backends={"default": cfg})) as gw:
        yield gw, cfg


def test_object_is_an_slo_listing_its_segments(
    swift_target: SwiftTarget, account: SwiftAccount, source: Path
) -> None:
    cfg = {**swift_target.backend_config(), "min_segment_size": MiB, "max_segment_size": 4 * MiB}
    container, segments = containers(cfg)
    data = source.read_bytes()
    with GatewayProcess(gateway_config(swift_target, backends={"default": cfg})) as gw:
        uploader = uploader_for(gw.files_url, str(source), chunk_size=256 * KiB)
        uploader.upload()
        key = key_of(uploader.url)
        head = account.request("HEAD", f"{container}/{key}")
        assert head.headers["X-Static-Large-Object"] == "True"
        leaves = account.segments_of(container, key)
        assert all(c == segments and n.startswith(f"{key}/") for c, n, _ in leaves)
        sizes = [size for _, _, size in leaves]
        assert sum(sizes) == len(data)
        # 256 KiB PATCHes were packed into 1 MiB segments (tails rewritten)
        assert sizes[:-1] == [MiB] * (len(sizes) - 1)
        # nothing else is stored: superseded tails are gone, and a tus upload
        # committed to its own key needs no owner marker
        stored = account.names(segments)
        assert sorted(stored) == sorted([n for _, n, _ in leaves])
        assert sha(account.request("GET", f"{container}/{key}").content) == sha(data)
        assert sha(download(uploader.url)) == sha(data)

        assert requests.delete(uploader.url, headers=TUS, timeout=30).status_code == 204
        assert account.names(segments) == [] and account.names(container) == []


def swift_config_for(server: SwiftServer, **options: Any) -> dict[str, Any]:
    return {
        "type": "swift",
        "auth_url": server.auth_url,
        "user": server.user,
        "key": server.key,
        "container": "up",
        "create_containers": True,
        **options,
    }


def single_backend(cfg: dict[str, Any], **sections: Any) -> dict[str, Any]:
    return {
        "backends": {"default": cfg},
        "buckets": {"default": {"backend": "default"}},
        "uploads": {"sweep_interval": 1},
        **sections,
    }


@pytest.mark.slow
def test_more_than_1000_segments_nest_manifests(tmp_path: Path) -> None:
    # 1 KiB segments keep this small; a Swift of its own, because SLO serves
    # segments under 1 MiB at one per second after the first ten by default
    data = os.urandom(1100 * KiB + 5)  # 1,101 segments
    path = tmp_path / "many.bin"
    path.write_bytes(data)
    slo = {"slo": {"rate_limit_after_segment": "100000"}}
    with SwiftServer(filter_options=slo) as server:
        account = SwiftAccount(server)
        cfg = swift_config_for(
            server,
            min_segment_size=1,
            max_segment_size=KiB,
            segments_in_flight=8,
            url={"mode": "gateway"},
        )
        container, segments = containers(cfg)
        with GatewayProcess(single_backend(cfg)) as gw:
            uploader = uploader_for(gw.files_url, str(path), chunk_size=512 * KiB)
            uploader.upload()
            key = key_of(uploader.url)
            top = account.manifest(container, key)
            assert top is not None and len(top) == 2
            assert all(line.get("sub_slo") for line in top)  # 1,000 + 101
            leaves = account.segments_of(container, key)
            assert len(leaves) == 1101 and sum(s for _, _, s in leaves) == len(data)
            assert sha(download(uploader.url)) == sha(data)
            assert account.orphans(container, segments) == []

            assert requests.delete(uploader.url, headers=TUS, timeout=30).status_code == 204
            assert account.names(segments) == [] and account.names(container) == []


def _tamper(url: str, param: str) -> str:
    parts = urlsplit(url)
    query = [
        (k, (v[:-1] + ("0" if v[-1] != "0" else "1")) if k == param else v)
        for k, v in parse_qsl(parts.query)
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_temp_url_serves_the_object_and_refuses_tampering(
    swift_gateway: tuple[GatewayProcess, dict[str, Any]], source: Path
) -> None:
    gw, _ = swift_gateway
    uploader = uploader_for(gw.files_url, str(source), chunk_size=4 * MiB)
    uploader.upload()
    url = requests.head(uploader.url, headers=TUS, timeout=30).headers["X-Object-Url"]
    assert "temp_url_sig=" in url and "temp_url_expires=" in url
    got = requests.get(url, proxies=NO_PROXY, timeout=60)
    assert got.status_code == 200 and sha(got.content) == sha(source.read_bytes())
    ranged = requests.get(url, headers={"Range": "bytes=10-19"}, proxies=NO_PROXY, timeout=30)
    assert ranged.status_code == 206 and ranged.content == source.read_bytes()[10:20]
    key = key_of(uploader.url)
    other = key[:-1] + ("0" if key[-1] != "0" else "1")
    for bad in (
        _tamper(url, "temp_url_sig"),
        _tamper(url, "temp_url_expires"),
        url.replace(key, other),
    ):
        assert requests.get(bad, proxies=NO_PROXY, timeout=30).status_code == 401


def _start_partial(files_url: str, source: Path, chunk: int, chunks: int) -> Any:
    uploader = uploader_for(files_url, str(source), chunk_size=chunk)
    uploader.set_url(uploader.create_url())
    uploader.offset = 0
    for _ in range(chunks):
        uploader.upload_chunk()
    return uploader


def test_terminate_leaves_no_segments(
    swift_gateway: tuple[GatewayProcess, dict[str, Any]], account: SwiftAccount, source: Path
) -> None:
    gw, cfg = swift_gateway
    _, segments = containers(cfg)
    uploader = _start_partial(gw.files_url, source, 700 * KiB, 5)  # ends on a packed tail
    prefix = key_of(uploader.url) + "/"
    assert account.names(segments, prefix)
    assert requests.delete(uploader.url, headers=TUS, timeout=30).status_code == 204
    assert account.names(segments, prefix) == []


def test_expiry_leaves_no_segments(
    swift_target: SwiftTarget, account: SwiftAccount, source: Path
) -> None:
    cfg = swift_target.backend_config()
    _, segments = containers(cfg)
    config = gateway_config(
        swift_target,
        backends={"default": cfg},
        uploads={"expire_after": 2, "sweep_interval": 0.5},
    )
    with GatewayProcess(config) as gw:
        uploader = _start_partial(gw.files_url, source, 1500 * KiB, 2)
        prefix = key_of(uploader.url) + "/"
        assert account.names(segments, prefix)
        deadline = time.monotonic() + 30
        while account.names(segments, prefix) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert account.names(segments, prefix) == []
        assert requests.head(uploader.url, headers=TUS, timeout=30).status_code in (404, 410)


@pytest.mark.slow
def test_swift_stopped_mid_upload_then_restarted(tmp_path: Path) -> None:
    data = os.urandom(12 * MiB + 321)
    path = tmp_path / "source.bin"
    path.write_bytes(data)
    with SwiftServer() as server:
        account = SwiftAccount(server)
        cfg = swift_config_for(server, max_segment_size="1MiB", url={"mode": "gateway"})
        with GatewayProcess(single_backend(cfg)) as gw:
            uploader = uploader_for(
                gw.files_url, str(path), chunk_size=2 * MiB, retries=30, retry_delay=1
            )
            uploader.set_url(uploader.create_url())
            uploader.offset = 0
            uploader.upload_chunk()
            uploader.upload_chunk()
            assert uploader.offset == 4 * MiB

            def body() -> Iterator[bytes]:  # Swift goes away while this PATCH streams
                for i in range(4 * MiB, 9 * MiB, 256 * KiB):
                    if i == 6 * MiB + 512 * KiB:
                        server.stop()
                    yield data[i : i + 256 * KiB]
                    time.sleep(0.01)

            try:
                r = patch(uploader.url, 4 * MiB, body())  # type: ignore[arg-type]  # streamed
                assert r.status_code == 503 and "Retry-After" in r.headers
            except requests.ConnectionError:
                pass  # the gateway answered 503 and closed before the body ended
            held = offset_of(uploader.url)  # what Swift acknowledged before it stopped
            assert 4 * MiB <= held <= 6 * MiB + 512 * KiB
            r = patch(uploader.url, held, data[held : held + MiB])
            assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0

            restart = threading.Timer(2.0, server.start)
            restart.start()
            try:
                uploader.offset = held
                uploader.upload()  # tuspy retries the 503s until Swift is back
            finally:
                restart.join()
            assert sha(download(uploader.url)) == sha(data)
            assert account.orphans("up", "up_segments") == []
