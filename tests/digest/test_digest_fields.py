"""RFC 9530 digest fields: parsed bounded, unknown algorithms ignored, a
malformed value a one-line 400, formatted back to the same dictionary."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.errors import BadRequest
from gateway.digest_fields import (
    DECLARED,
    declared_extra,
    format_digests,
    parse_digests,
)

SHA256 = hashlib.sha256(b"hello").digest()
SHA512 = hashlib.sha512(b"hello").digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_sha256_and_sha512_are_read() -> None:
    field = f"sha-256=:{b64(SHA256)}:, sha-512=:{b64(SHA512)}:"
    assert parse_digests([field]) == {"sha-256": SHA256, "sha-512": SHA512}


def test_lines_of_one_field_are_joined() -> None:
    lines = [f"sha-256=:{b64(SHA256)}:", f"sha-512=:{b64(SHA512)}:"]
    assert parse_digests(lines) == {"sha-256": SHA256, "sha-512": SHA512}


def test_unknown_algorithms_are_ignored() -> None:
    field = f"unixsum=:AAA=:, sha-256=:{b64(SHA256)}:, id-sha-256=:{b64(SHA256)}:"
    assert parse_digests([field]) == {"sha-256": SHA256}
    assert parse_digests(["crc32c=:AAAAAA==:"]) == {}
    assert parse_digests([]) == {}


def test_parameters_are_ignored_and_the_last_duplicate_wins() -> None:
    other = hashlib.sha256(b"other").digest()
    field = f"sha-256=:{b64(other)}:;x=1, sha-256=:{b64(SHA256)}:"
    assert parse_digests([field]) == {"sha-256": SHA256}


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("sha-256=abc", "must be a byte sequence"),
        ("sha-256=:AAAA:", "is 32 bytes, not 3"),
        (f"sha-512=:{b64(SHA256)}:", "is 64 bytes, not 32"),
        ("sha-256=:@@:", "not a structured-field dictionary"),
        (f"SHA-256=:{b64(SHA256)}:", "not a structured-field dictionary"),
        ("sha-256=:é:", "not a structured-field dictionary"),
        ("sha-256=(1 2)", "must be a byte sequence"),
        ("x=:" + "A" * 3000 + ":", "longer than 2048"),
    ],
)
def test_malformed_fields_are_one_line_bad_requests(field: str, reason: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_digests([field])
    assert reason in caught.value.message
    assert "\n" not in caught.value.message


def test_format_round_trips() -> None:
    digests = {"sha-256": SHA256, "sha-512": SHA512}
    text = format_digests(digests)
    assert text == f"sha-256=:{b64(SHA256)}:, sha-512=:{b64(SHA512)}:"
    assert parse_digests([text]) == digests


def test_declared_extra_keeps_lowercase_hex() -> None:
    assert declared_extra([f"sha-256=:{b64(SHA256)}:"]) == {DECLARED: {"sha-256": SHA256.hex()}}
    assert declared_extra(["md5=:AAAA:"]) == {}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=120), max_size=3))
def test_any_input_parses_or_is_a_bad_request(lines: list[str]) -> None:
    try:
        parsed = parse_digests(lines)
    except BadRequest:
        return
    assert set(parsed) <= {"sha-256", "sha-512"}
