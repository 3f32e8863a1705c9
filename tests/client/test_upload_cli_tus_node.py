"""The same CLI against tus-node-server (@tus/server 2.x with its file
store, tests/js): only the public tus protocol, no gateway extras. That
server offers no concatenation, so ``--parallel`` says so and sends one stream.
Bytes are checked in the server's store directory: its GET handler crashes
Node 20's web streams when a client closes a keep-alive download (seen with
requests), which is that server's business, not the client's."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.harness import (
    MiB,
    command,
    env,
    file_sha256,
    percent_sent,
    random_file,
    run,
    start,
    stored,
    wait_until,
)
from testservers.ports import free_port, port_open

JS_DIR = Path(__file__).resolve().parents[1] / "js"
STORE: dict[str, Path] = {}


def stored_sha256(endpoint: str, url: str) -> str:
    """SHA-256 of the upload as the file store holds it (named by its id)."""
    return file_sha256(STORE[endpoint] / url.rsplit("/", 1)[1])


@pytest.fixture(scope="module")
def tus_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The creation URL; the files land in ``STORE[endpoint]``."""
    node = shutil.which("node")
    assert node, "node is required (scripts/install-test-deps.sh installs it)"
    assert (JS_DIR / "node_modules" / "@tus" / "server").is_dir(), (
        "tests/js/node_modules lacks @tus/server: run scripts/install-test-deps.sh"
    )
    port = free_port()
    data = tmp_path_factory.mktemp("tus-node")
    log = open(data.parent / "tus-node.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [node, str(JS_DIR / "tus_node_server.mjs"), str(port), str(data)],
        cwd=JS_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: port_open(port), timeout=30, what="tus-node-server")
        endpoint = f"http://127.0.0.1:{port}/files"
        STORE[endpoint] = data
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_file_and_directory(tus_node: str, tmp_path: Path) -> None:
    one = random_file(tmp_path / "one.bin", 3 * MiB + 1)
    random_file(tmp_path / "dir" / "a.bin", 100)
    random_file(tmp_path / "dir" / "sub" / "b.bin", MiB)
    recs = run(one, tmp_path / "dir", "--endpoint", tus_node, resume_file=tmp_path / "r.json")
    assert [r["name"] for r in recs] == ["one.bin", "dir/a.bin", "dir/sub/b.bin"]
    for rec in recs:
        assert rec["url"].startswith(tus_node + "/")  # the upload URL: no X-Object-Url here
        assert stored_sha256(tus_node, rec["url"]) == file_sha256(Path(rec["path"]))


def test_parallel_without_concatenation_is_one_stream(tus_node: str, tmp_path: Path) -> None:
    src = random_file(tmp_path / "big.bin", 8 * MiB)
    proc = subprocess.run(
        command(
            *(src, "--endpoint", tus_node, "--parallel", "4", "--progress", "none"),
            resume_file=tmp_path / "r",
        ),
        capture_output=True,
        text=True,
        timeout=120,
        env=env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert "does not offer tus concatenation" in proc.stderr
    url = proc.stdout.split('"url": "')[1].split('"')[0]
    assert stored_sha256(tus_node, url) == file_sha256(src)


def test_killed_client_resumes(tus_node: str, tmp_path: Path) -> None:
    src = random_file(tmp_path / "big.bin", 16 * MiB)
    resume = tmp_path / "r.json"
    log = tmp_path / "cli.log"
    proc = start(src, "--endpoint", tus_node, "--limit-rate", "6MiB", resume_file=resume, log=log)
    wait_until(lambda: percent_sent(log) >= 25, what="a quarter sent")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    url = stored(resume)[0]["parts"][0]
    [rec] = run(src, "--endpoint", tus_node, resume_file=resume)
    assert rec["upload"] == url
    assert 0 < rec["resumed_from"] < src.stat().st_size
    assert stored_sha256(tus_node, rec["url"]) == file_sha256(src)
