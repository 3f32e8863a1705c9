"""The real tuspy client against the gateway: whole file, chunks, checksums,
resume after a cut connection; raw fault tests (disconnect mid-PATCH,
concurrent PATCHes, SIGKILL and restart)."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tusclient import client as tus

from tests.conftest import gateway_config
from tests.support.cutproxy import CutProxy
from tests.support.targets import Target
from tests.tus.helpers import create, download, offset_of, patch
from testservers.gateway import GatewayProcess

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "source.bin"
    path.write_bytes(os.urandom(7 * MiB + 12345))
    return path


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tuspy_whole_file(gateway: GatewayProcess, source: Path) -> None:
    uploader = tus.TusClient(gateway.files_url).uploader(
        str(source), chunk_size=64 * MiB, metadata={"filename": source.name}
    )
    uploader.upload()
    assert hashlib.sha256(download(uploader.url)).hexdigest() == file_sha(source)


def test_tuspy_1mib_chunks_with_checksums(gateway: GatewayProcess, source: Path) -> None:
    uploader = tus.TusClient(gateway.files_url).uploader(
        str(source), chunk_size=MiB, upload_checksum=True
    )
    uploader.upload()
    assert hashlib.sha256(download(uploader.url)).hexdigest() == file_sha(source)


def test_tuspy_resumes_after_connection_cut_mid_patch(
    gateway: GatewayProcess, source: Path
) -> None:
    with CutProxy(gateway.port) as proxy:
        client = tus.TusClient(proxy.url + "/files/")
        uploader = client.uploader(str(source), chunk_size=4 * MiB, retries=3, retry_delay=0.2)
        uploader.set_url(uploader.create_url())
        proxy.cut_next_after(2 * MiB)  # inside the first PATCH body
        uploader.upload()
        assert proxy.cuts == 1
        assert hashlib.sha256(download(uploader.url)).hexdigest() == file_sha(source)


def _send_partial_patch(port: int, path: str, offset: int, total: int, data: bytes) -> None:
    """A PATCH announcing ``total`` bytes that sends only ``data`` and hangs up."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        head = (
            f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
            f"Content-Length: {total}\r\n\r\n"
        )
        s.sendall(head.encode() + data)
        time.sleep(0.3)


def test_disconnect_mid_patch_keeps_received_bytes(gateway: GatewayProcess, target: Target) -> None:
    data = os.urandom(3 * MiB)
    url = create(gateway.files_url, len(data))
    path = url.replace(gateway.url, "")
    _send_partial_patch(gateway.port, path, 0, len(data), data[: 2 * MiB + 5])
    deadline = time.time() + 5
    while offset_of(url) == 0 and time.time() < deadline:
        time.sleep(0.1)
    offset = offset_of(url)
    if target.name == "local":
        assert offset == 2 * MiB + 5
    assert 0 <= offset <= 2 * MiB + 5
    assert patch(url, offset, data[offset:]).status_code == 204
    assert download(url) == data


def _slow_patch(port: int, path: str, data: bytes, pause: float) -> int:
    """A PATCH at offset 0 whose body trickles in; returns the status."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        head = (
            f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
            "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        )
        s.sendall(head.encode())
        try:
            for i in range(0, len(data), 256 * 1024):
                s.sendall(data[i : i + 256 * 1024])
                time.sleep(pause)
        except OSError:
            pass  # the server answered early and closed
        reply = s.recv(4096).decode("latin-1")
    return int(reply.split(" ", 2)[1])


def test_concurrent_patches_never_interleave(gateway: GatewayProcess) -> None:
    a, b = os.urandom(4 * MiB), os.urandom(4 * MiB)
    url = create(gateway.files_url, 4 * MiB)
    path = url.replace(gateway.url, "")
    statuses: dict[str, int] = {}

    def send(name: str, data: bytes) -> None:
        statuses[name] = _slow_patch(gateway.port, path, data, 0.02)

    threads = [threading.Thread(target=send, args=(n, d)) for n, d in (("a", a), ("b", b))]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join()
    assert all(s in (204, 409, 423) for s in statuses.values()), statuses
    offset = offset_of(url)
    assert patch(url, offset, a[offset:]).status_code == 204
    got = download(url)
    # what was stored before is a prefix of exactly one body, never a mix
    assert got[:offset] in (a[:offset], b[:offset])
    assert got[offset:] == a[offset:]


@pytest.fixture()
def own_gateway(target: Target) -> Iterator[GatewayProcess]:
    with GatewayProcess(gateway_config(target)) as gw:
        yield gw


def test_sigkill_mid_upload_then_resume(own_gateway: GatewayProcess, source: Path) -> None:
    gw = own_gateway
    data = source.read_bytes()
    url = create(gw.files_url, len(data))
    path = url.replace(gw.url, "")
    sent = threading.Event()

    def slow_body() -> None:
        try:
            with socket.create_connection(("127.0.0.1", gw.port)) as s:
                head = (
                    f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
                    "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n"
                )
                s.sendall(head.encode())
                for i in range(0, len(data), 512 * 1024):
                    s.sendall(data[i : i + 512 * 1024])
                    if i >= 3 * MiB:
                        sent.set()
                    time.sleep(0.05)
        except OSError:
            pass

    thread = threading.Thread(target=slow_body)
    thread.start()
    assert sent.wait(30)
    gw.kill()
    thread.join()
    gw.start()  # same port, same state and data
    uploader = tus.TusClient(gw.files_url).uploader(str(source), chunk_size=2 * MiB, url=url)
    offset = uploader.get_offset()
    assert 0 <= offset < len(data)
    uploader.upload()
    assert hashlib.sha256(download(url)).hexdigest() == file_sha(source)
