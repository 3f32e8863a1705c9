"""qetag, the ``hash`` of every Qiniu answer (ARCHITECTURE.md §8).

* v1: one SHA-1 per 4 MiB block. One block: ``0x16 + sha1(data)``; more:
  ``0x96 + sha1(sha1(b1) + sha1(b2) + …)``.
* v2, for multipart uploads whose parts are not all 4 MiB (but a last one
  ≤ 4 MiB): ``0x9e + sha1(v1_raw(part1)[1:] + v1_raw(part2)[1:] + …)``.

Everything is derived from per-block SHA-1 digests taken while the bytes pass
(``BlockHasher``), so no object is ever re-read to name its hash. A stream's
digests are kept as a list of hex strings (JSON-able) in its record.
``Running`` is the v1 etag of one stream as a whole-object digest
(``core/digests.py``) whose state is kept on its record between requests.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import rehashes

from .codec import b64encode

BLOCK_SIZE = 4 * 1024 * 1024
#: characters of an etag (URL-safe base64 of 21 bytes)
LENGTH = 28

_SINGLE = 0x16
_MULTI = 0x96
_V2 = 0x9E


def v1_raw(block_sha1s: Sequence[bytes]) -> bytes:
    """The 21-byte v1 etag from the SHA-1 of each 4 MiB block."""
    if not block_sha1s:
        return bytes([_SINGLE]) + hashlib.sha1(b"").digest()
    if len(block_sha1s) == 1:
        return bytes([_SINGLE]) + block_sha1s[0]
    return bytes([_MULTI]) + hashlib.sha1(b"".join(block_sha1s)).digest()


def v1(block_sha1s: Sequence[bytes]) -> str:
    return b64encode(v1_raw(block_sha1s))


def v2(parts_block_sha1s: Iterable[Sequence[bytes]]) -> str:
    """The v2 etag from each part's block SHA-1s."""
    joined = b"".join(v1_raw(blocks)[1:] for blocks in parts_block_sha1s)
    return b64encode(bytes([_V2]) + hashlib.sha1(joined).digest())


@dataclass(frozen=True)
class Piece:
    """A finished stream as the etag sees it: its size and block SHA-1s."""

    size: int
    block_sha1s: tuple[bytes, ...]


def of_pieces(pieces: Sequence[Piece], multipart: bool = False) -> str:
    """The etag of the concatenation of ``pieces``.

    When every piece but the last is a whole number of 4 MiB blocks (v1
    blocks always are), the blocks of the concatenation are the pieces'
    blocks and the true v1 etag of the file comes out. Otherwise (only
    possible for v2 parts) the v2 form applies. ``multipart`` marks v2
    uploads, for which Qiniu's rule is stricter: v1 only if every part but
    the last is exactly 4 MiB and the last at most 4 MiB.
    """
    if multipart:
        head, last = pieces[:-1], pieces[-1:] or [Piece(0, ())]
        four_mib = all(p.size == BLOCK_SIZE for p in head) and last[0].size <= BLOCK_SIZE
        if not four_mib:
            return v2(p.block_sha1s for p in pieces)
    elif any(p.size % BLOCK_SIZE for p in pieces[:-1]):
        return v2(p.block_sha1s for p in pieces)
    return v1([d for p in pieces for d in p.block_sha1s])


def of_bytes(data: bytes) -> str:
    """The v1 etag of ``data`` (for tests and small bodies)."""
    hasher = BlockHasher()
    hasher.update(data)
    return v1(hasher.digests())


class BlockHasher:
    """Incremental SHA-1 of each 4 MiB block of one stream, from its start.
    ``copy`` snapshots it (to answer a running checksum, or to keep it past a
    write that may still be refused)."""

    def __init__(self) -> None:
        self._done: list[bytes] = []
        self._current = hashlib.sha1()
        self._filled = 0
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), BLOCK_SIZE - self._filled)
            self._current.update(view[:take])
            self._filled += take
            self.size += take
            view = view[take:]
            if self._filled == BLOCK_SIZE:
                self._done.append(self._current.digest())
                self._current = hashlib.sha1()
                self._filled = 0

    def digests(self) -> list[bytes]:
        """SHA-1 of each block so far, the last possibly partial."""
        if self._filled:
            return [*self._done, self._current.digest()]
        return list(self._done)

    def current_block_sha1(self) -> bytes:
        """SHA-1 of the bytes of the current (or, at a boundary, last) block."""
        if self._filled or not self._done:
            return self._current.digest()
        return self._done[-1]

    def copy(self) -> BlockHasher:
        clone = BlockHasher()
        clone._done = list(self._done)
        clone._current = self._current.copy()
        clone._filled = self._filled
        clone.size = self.size
        return clone


def to_hex(digests: Iterable[bytes]) -> list[str]:
    return [d.hex() for d in digests]


def from_hex(digests: Iterable[str]) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(d) for d in digests)


class Running:
    """The v1 etag of one stream as its bytes pass, with a state that
    serialises (``rehashes``' SHA-1; ``hashlib``'s cannot), so any instance
    continues it: the current block's SHA-1, and the SHA-1 of the finished
    blocks' digests (the etag of several blocks) with the first of them (the
    etag of one). The interface of ``core/digests.py``'s hashers:
    ``finalize`` is the hex of ``v1_raw`` (``of_hex`` names it)."""

    def __init__(self) -> None:
        self._outer: Any = rehashes.PySha1()
        self._current: Any = rehashes.PySha1()
        self._first = b""
        self._blocks = 0
        self._filled = 0

    def update(self, data: bytes, /) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), BLOCK_SIZE - self._filled)
            self._current.update(bytes(view[:take]))
            self._filled += take
            view = view[take:]
            if self._filled == BLOCK_SIZE:
                digest = bytes.fromhex(str(self._current.finalize()))
                self._outer.update(digest)
                self._first = self._first or digest
                self._blocks += 1
                self._current = rehashes.PySha1()
                self._filled = 0

    def finalize(self) -> str:
        """The hex of the etag of the bytes so far (the hasher goes on)."""
        current = bytes.fromhex(str(self._current.finalize()))
        if self._blocks == 0 or (self._blocks == 1 and not self._filled):
            return v1_raw([self._first or current]).hex()
        outer = rehashes.PySha1.deserialize(self._outer.serialize())
        if self._filled:
            outer.update(current)
        return (bytes([_MULTI]) + bytes.fromhex(str(outer.finalize()))).hex()

    def serialize(self) -> bytes:
        state = {
            "outer": base64.b64encode(self._outer.serialize()).decode(),
            "current": base64.b64encode(self._current.serialize()).decode(),
            "first": self._first.hex(),
            "blocks": self._blocks,
            "filled": self._filled,
        }
        return json.dumps(state).encode()

    @classmethod
    def deserialize(cls, data: bytes) -> Running:
        """A hasher from ``serialize``'s bytes (``ValueError`` if they are not)."""
        try:
            state = json.loads(data)
            running = cls()
            running._outer = rehashes.PySha1.deserialize(base64.b64decode(state["outer"]))
            running._current = rehashes.PySha1.deserialize(base64.b64decode(state["current"]))
            running._first = bytes.fromhex(state["first"])
            running._blocks = int(state["blocks"])
            running._filled = int(state["filled"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a qetag state: {exc}") from None
        return running


def of_hex(hex_digest: str) -> str:
    """The etag (``$(etag)``) of ``Running.finalize``'s hex."""
    return b64encode(bytes.fromhex(hex_digest))
