"""Upload checksums (tus checksum extension): algorithm registry and checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from backends.crc import crc32
from gateway.core.errors import BadRequest, UnsupportedChecksum


class Crc32:
    """CRC-32 as a hasher: ``value`` the running checksum."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes, /) -> None:
        self.value = crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


class _Hash(Protocol):
    """The common face of hashlib objects and the CRC."""

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


ALGORITHMS: dict[str, Callable[[], _Hash]] = {
    "sha1": hashlib.sha1,
    "md5": hashlib.md5,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "crc32": Crc32,
}


@dataclass
class Checksum:
    algorithm: str
    expected: bytes
    hasher: _Hash = field(init=False)

    def __post_init__(self) -> None:
        self.hasher = ALGORITHMS[self.algorithm]()

    def matches(self) -> bool:
        return self.hasher.digest() == self.expected

    @classmethod
    def parse(cls, header: str) -> Checksum:
        """``sha1 <base64 digest>`` → Checksum; 400 when malformed or unknown."""
        try:
            algorithm, encoded = header.strip().split(" ", 1)
        except ValueError:
            raise BadRequest("Upload-Checksum must be '<algorithm> <base64 digest>'") from None
        algorithm = algorithm.lower()
        if algorithm not in ALGORITHMS:
            raise UnsupportedChecksum(f"unsupported checksum algorithm {algorithm!r}")
        try:
            expected = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("the checksum is not valid base64") from None
        return cls(algorithm, expected)


class _AllHashes:
    """Feeds every algorithm at once, for a checksum named only at the end."""

    def __init__(self) -> None:
        self.hashes = {name: make() for name, make in ALGORITHMS.items()}

    def update(self, data: bytes, /) -> None:
        for h in self.hashes.values():
            h.update(data)

    def digest(self) -> bytes:
        raise NotImplementedError("ask for one algorithm's digest")


class TrailerChecksum(Checksum):
    """An ``Upload-Checksum`` that arrives as an HTTP trailer (tus
    checksum-trailer): every algorithm is computed while the bytes pass and
    the trailer, read once the body has ended, picks one."""

    def __init__(self, read_trailer: Callable[[], str | None]) -> None:
        self.algorithm = ""
        self.expected = b""
        self.hasher = _AllHashes()
        self._read_trailer = read_trailer

    def matches(self) -> bool:
        value = self._read_trailer()
        if value is None:
            raise BadRequest("the announced Upload-Checksum trailer is missing")
        parsed = Checksum.parse(value)
        assert isinstance(self.hasher, _AllHashes)
        return self.hasher.hashes[parsed.algorithm].digest() == parsed.expected
