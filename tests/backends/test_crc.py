"""``backends.crc.crc32`` (ISA-L) gives zlib's CRC-32 values, whole or in pieces."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from backends.crc import crc32


@given(st.binary(max_size=1 << 16), st.integers(0, 0xFFFFFFFF))
def test_crc32_is_zlibs(data: bytes, start: int) -> None:
    assert crc32(data, start) == zlib.crc32(data, start)
    assert crc32(memoryview(data)) == zlib.crc32(data)


@given(st.lists(st.binary(max_size=4096), max_size=8))
def test_crc32_continues_over_pieces(pieces: list[bytes]) -> None:
    value = 0
    for piece in pieces:
        value = crc32(piece, value)
    assert value == zlib.crc32(b"".join(pieces))


def test_crc32_of_a_known_value() -> None:
    assert crc32(b"123456789") == 0xCBF43926  # the CRC-32 check value
