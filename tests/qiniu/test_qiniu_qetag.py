from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import qiniu

from gateway.access import qetag
from gateway.access.qetag import BLOCK_SIZE, BlockHasher, Piece


def test_doc_vectors() -> None:
    assert qetag.of_bytes(b"") == "Fto5o-5ea0sNMlW_75VgGJCv2AcJ"
    assert qetag.of_bytes(b"etag") == "FpLiADEaVoALPkdb8tJEJyRTXoe_"
    parts = [(hashlib.sha1(b"hello").digest(),), (hashlib.sha1(b"world").digest(),)]
    assert qetag.v2(parts) == "ns56DcSIfBFUENXjdhsJTIvl3Rcu"


def _piece(data: bytes) -> Piece:
    hasher = BlockHasher()
    hasher.update(data)
    return Piece(len(data), tuple(hasher.digests()))


@pytest.mark.parametrize(
    "size", [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 3 * BLOCK_SIZE + 7]
)
def test_matches_sdk(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    hasher = BlockHasher()
    for i in range(0, size, 100_003):  # chunks that straddle block boundaries
        hasher.update(data[i : i + 100_003])
    assert qetag.v1(hasher.digests()) == qiniu.etag(str(path))
    assert hasher.size == size


@pytest.mark.parametrize(
    "size", [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 2 * BLOCK_SIZE, 3 * BLOCK_SIZE + 7]
)
def test_running_state_survives_serialisation(tmp_path: Path, size: int) -> None:
    """``qetag.Running`` (a tus upload named by ``$(etag)``) continued from
    its serialised state after every chunk, as across PATCHes and instances."""
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    running = qetag.Running()
    for i in range(0, size, 1_048_583):
        running.update(data[i : i + 1_048_583])
        running.finalize()  # the hasher goes on
        running = qetag.Running.deserialize(running.serialize())
    assert qetag.of_hex(running.finalize()) == qiniu.etag(str(path))
    with pytest.raises(ValueError):
        qetag.Running.deserialize(b"{}")


def test_pieces_block_aligned_give_v1(tmp_path: Path) -> None:
    data = os.urandom(2 * BLOCK_SIZE + 5)
    blocks = [data[i : i + BLOCK_SIZE] for i in range(0, len(data), BLOCK_SIZE)]
    path = tmp_path / "f"
    path.write_bytes(data)
    expected = qiniu.etag(str(path))
    assert qetag.of_pieces([_piece(b) for b in blocks]) == expected
    # v2 parts of exactly 4 MiB: v1 as well
    assert qetag.of_pieces([_piece(b) for b in blocks], multipart=True) == expected
    # 8 MiB + tail parts: block-aligned, but Qiniu names multipart uploads v2
    eight = [data[: 2 * BLOCK_SIZE], data[2 * BLOCK_SIZE :]]
    assert qetag.of_pieces([_piece(p) for p in eight]) == expected
    v2 = qetag.of_pieces([_piece(p) for p in eight], multipart=True)
    assert v2.startswith("n") and v2 == _reference_v2(eight)


def _reference_v2(parts: list[bytes]) -> str:
    """Straight from the doc's formula, independent of BlockHasher."""
    joined = b""
    for part in parts:
        blocks = [part[i : i + BLOCK_SIZE] for i in range(0, len(part), BLOCK_SIZE)] or [b""]
        sha1s = [hashlib.sha1(b).digest() for b in blocks]
        joined += sha1s[0] if len(sha1s) == 1 else hashlib.sha1(b"".join(sha1s)).digest()
    import base64

    return base64.urlsafe_b64encode(b"\x9e" + hashlib.sha1(joined).digest()).decode()


def test_unaligned_parts_give_v2() -> None:
    parts = [os.urandom(1024 * 1024 + 3), os.urandom(5 * 1024 * 1024), os.urandom(10)]
    assert qetag.of_pieces([_piece(p) for p in parts], multipart=True) == _reference_v2(parts)
    assert qetag.of_pieces([_piece(p) for p in parts]) == _reference_v2(parts)


def test_copy_and_running_block_sha1() -> None:
    hasher = BlockHasher()
    hasher.update(b"abc")
    snap = hasher.copy()
    hasher.update(b"def")
    assert snap.current_block_sha1() == hashlib.sha1(b"abc").digest()
    assert hasher.current_block_sha1() == hashlib.sha1(b"abcdef").digest()
    assert qetag.from_hex(qetag.to_hex(hasher.digests())) == tuple(hasher.digests())
