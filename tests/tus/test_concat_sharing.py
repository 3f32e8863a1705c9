"""Concatenation with partials shared by several finals (issue 15, class 3).

The tus spec lets a partial upload be used by several finals. Before, the
first assembly discarded the partials the other finals still waited for:
those never finished (HEAD without Upload-Offset, GET 409, forever). And a
final listing one partial 17 times multiplied an upload past
``max_upload_size``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import gateway_config
from tests.support.targets import Target
from tests.tus.helpers import (
    TUS,
    answer_head,
    create,
    download,
    head,
    offset_of,
    open_patch,
    patch,
    sha256,
)
from testservers.gateway import GatewayProcess

JS_DIR = Path(__file__).resolve().parents[1] / "js"
MAX = 1024 * 1024


def _run_multi_final(endpoint: str, a: Path, b: Path) -> dict[str, object]:
    node = shutil.which("node")
    assert node, "node is required (see README: the test command installs it)"
    assert (JS_DIR / "node_modules" / "tus-js-client").is_dir(), (
        "tests/js/node_modules is missing: run scripts/install-test-deps.sh"
    )
    proc = subprocess.run(
        [node, str(JS_DIR / "tus_multi_final.mjs"), endpoint, str(a), str(b)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=JS_DIR,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _gone_soon(url: str, within: float = 15.0) -> int:
    """The status of a discarded partial (discarding runs after the answer)."""
    deadline = time.monotonic() + within
    while True:
        status = head(url).status_code
        if status in (404, 410) or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_partials_shared_by_several_unfinished_finals(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    """tus-js-client uploads two partials; three finals made of them (one
    lists a partial twice) exist before the partials finish. Every final
    finishes byte-identical, and the partials are discarded once no final
    needs them."""
    a, b = os.urandom(3_000_001), os.urandom(2_500_003)
    (tmp_path / "a").write_bytes(a)
    (tmp_path / "b").write_bytes(b)
    result = _run_multi_final(gateway.files_url, tmp_path / "a", tmp_path / "b")
    finals = result["finals"]
    assert isinstance(finals, dict)
    expected = {"ab": a + b, "baa": b + a + a, "a": a}
    for name, data in expected.items():
        assert sha256(download(str(finals[name]))) == sha256(data), name
        assert offset_of(str(finals[name])) == len(data)
    partials = result["partials"]
    assert isinstance(partials, list)
    for url in partials:
        assert _gone_soon(str(url)) == 410


def _partial(files_url: str, data: bytes | None, deferred: bool = False) -> str:
    headers = {"Upload-Concat": "partial"}
    url = create(files_url, None if deferred else len(data or b""), **headers)
    if data:
        r = patch(url, 0, data)
        assert r.status_code == 204, r.text
    return url


def _final(files_url: str, parts: list[str]) -> requests.Response:
    paths = " ".join(requests.utils.urlparse(u).path for u in parts)
    return requests.post(files_url, headers={**TUS, "Upload-Concat": f"final;{paths}"}, timeout=30)


@pytest.fixture(scope="module")
def limited_gateway(target: Target) -> Iterator[GatewayProcess]:
    config = gateway_config(target, server={"max_upload_size": MAX})
    with GatewayProcess(config) as gw:
        yield gw


def test_a_partial_listed_many_times_counts_many_times(limited_gateway: GatewayProcess) -> None:
    files = limited_gateway.files_url
    piece = os.urandom(100_000)
    part = _partial(files, piece)
    refused = _final(files, [part] * 17)  # 1.7 MB from one 100 KB upload
    assert refused.status_code == 413, (refused.status_code, refused.text)
    made = _final(files, [part] * 10)  # 1,000,000 bytes: within the limit
    assert made.status_code == 201, made.text
    url = str(made.headers["Location"])
    assert sha256(download(url)) == sha256(piece * 10)


def test_a_deferred_partial_cannot_grow_a_final_past_the_limit(
    limited_gateway: GatewayProcess,
) -> None:
    files = limited_gateway.files_url
    part = _partial(files, None, deferred=True)
    # as far as known (0 bytes so far) the final fits: created, waiting
    made = _final(files, [part] * 17)
    assert made.status_code == 201, made.text
    final_url = str(made.headers["Location"])
    # 17 x 100 KB would be 1.7 MB: refused before a byte is stored
    too_much = patch(part, 0, os.urandom(100_000))
    assert too_much.status_code == 413, (too_much.status_code, too_much.text)
    assert offset_of(part) == 0
    # what fits (17 x 60,000 = 1,020,000 <= 1 MiB) is taken
    piece = os.urandom(60_000)
    assert patch(part, 0, piece).status_code == 204
    # declaring a larger length is refused too; the right one finishes it
    assert patch(part, 60_000, b"", **{"Upload-Length": "62000"}).status_code == 413
    done = patch(part, 60_000, b"", **{"Upload-Length": "60000"})
    assert done.status_code == 204, done.text
    deadline = time.monotonic() + 15
    while "Upload-Offset" not in head(final_url).headers and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sha256(download(final_url)) == sha256(piece * 17)


def test_a_final_on_a_deferred_partial_counts_what_it_holds(
    limited_gateway: GatewayProcess,
) -> None:
    files = limited_gateway.files_url
    part = _partial(files, None, deferred=True)
    assert patch(part, 0, os.urandom(100_000)).status_code == 204
    refused = _final(files, [part] * 17)
    assert refused.status_code == 413, (refused.status_code, refused.text)


def test_a_final_whose_partial_was_terminated_ends_instead_of_waiting(
    gateway: GatewayProcess,
) -> None:
    files = gateway.files_url
    done, unfinished = _partial(files, b"x" * 1000), create(files, 1000, Upload_Concat="partial")
    made = _final(files, [done, unfinished])
    assert made.status_code == 201, made.text
    final_url = str(made.headers["Location"])
    assert head(final_url).status_code == 200  # pending: no Upload-Offset yet
    assert "Upload-Offset" not in head(final_url).headers
    gone = requests.delete(unfinished, headers=TUS, timeout=30)
    assert gone.status_code == 204
    # it can never finish: 410 now, not "pending" until it expires
    assert head(final_url).status_code == 410
    assert requests.get(final_url, timeout=30).status_code == 410
    # the other partial is not taken down with it: a new final still works
    again = _final(files, [done])
    assert again.status_code == 201, again.text
    assert download(str(again.headers["Location"])) == b"x" * 1000


def test_deferred_partials_grown_at_once_past_the_limit_end_their_final(
    limited_gateway: GatewayProcess,
) -> None:
    """Two deferred partials of one final, written at the same time: each
    PATCH took its room while the other still held nothing, so together they
    pass the limit. The final must not be assembled past it: it ends (410)."""
    files = limited_gateway.files_url
    a, b = _partial(files, None, deferred=True), _partial(files, None, deferred=True)
    made = _final(files, [a, b])
    assert made.status_code == 201, made.text
    final_url = str(made.headers["Location"])
    size = 600_000  # each alone fits in 1 MiB, both do not
    pieces = {a: os.urandom(size), b: os.urandom(size)}
    # both PATCHes are admitted (headers read, room taken) before either stores
    socks = {url: open_patch(url, 0, size, data[:1000]) for url, data in pieces.items()}
    try:
        time.sleep(0.5)
        for url, sock in socks.items():
            sock.sendall(pieces[url][1000:])
        for sock in socks.values():
            sock.settimeout(30)
            assert answer_head(sock)[0] == 204
    finally:
        for sock in socks.values():
            sock.close()
    for url in (a, b):
        assert patch(url, size, b"", **{"Upload-Length": str(size)}).status_code == 204
    deadline = time.monotonic() + 15
    while head(final_url).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert head(final_url).status_code == 410


def test_terminated_finals_release_their_partials(gateway: GatewayProcess) -> None:
    """A final terminated before it was made releases its partials: one
    another final still lists stays, one nobody lists is discarded at once
    (not kept until it expires); one still being written stays the client's."""
    files = gateway.files_url
    done, unfinished = _partial(files, b"r" * 1000), create(files, 1000, Upload_Concat="partial")
    finals = [_final(files, [done, unfinished]) for _ in range(2)]
    for made in finals:
        assert made.status_code == 201, made.text
    first, second = (str(made.headers["Location"]) for made in finals)
    assert requests.delete(first, headers=TUS, timeout=30).status_code == 204
    time.sleep(0.5)  # released after the answer
    assert head(done).status_code == 200  # the second final still lists it
    assert requests.delete(second, headers=TUS, timeout=30).status_code == 204
    assert _gone_soon(done) == 410
    assert offset_of(unfinished) == 0
    assert patch(unfinished, 0, b"u" * 1000).status_code == 204
