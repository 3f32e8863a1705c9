"""RFC 9530 digest fields (``Repr-Digest``), read and written in one place
for every protocol.

A field is an RFC 8941 dictionary (parsed by ``http_sf``), bounded in size.
Algorithms the gateway does not compute are ignored, as RFC 9530 §3 lets a
recipient do; a digest of a known algorithm that is not a byte sequence of
that algorithm's length is a ``BadRequest`` with a one-line reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import http_sf

from gateway.core.errors import BadRequest

log = logging.getLogger(__name__)

#: RFC 9530 algorithm keys the gateway verifies → their digest size in bytes
ALGORITHMS: dict[str, int] = {"sha-256": 32, "sha-512": 64}
#: the longest digest field read (several algorithms fit easily)
MAX_FIELD = 2048
#: the record's ``extra`` key of the declared digests: {algorithm: lowercase hex}
DECLARED = "core:declared-digest"


def _dictionary(values: Iterable[str], name: str) -> Mapping[str, object]:
    """The dictionary of one field, its lines joined as RFC 9110 §5.3 says."""
    text = ", ".join(v.strip(" \t") for v in values)
    if len(text) > MAX_FIELD:
        raise BadRequest(f"{name} is longer than {MAX_FIELD} bytes")
    try:
        parsed = http_sf.parse(text.encode("ascii"), tltype="dictionary")
    except (UnicodeEncodeError, http_sf.StructuredFieldError):
        raise BadRequest(f"{name} is not a structured-field dictionary") from None
    assert isinstance(parsed, dict)
    return parsed


def parse_digests(values: Iterable[str], name: str = "Repr-Digest") -> dict[str, bytes]:
    """``{algorithm: digest}`` for the algorithms of ``ALGORITHMS`` a digest
    field names (``values``: its lines; none → ``{}``)."""
    values = list(values)
    if not values:
        return {}
    digests: dict[str, bytes] = {}
    ignored: list[str] = []
    for algorithm, member in _dictionary(values, name).items():
        size = ALGORITHMS.get(algorithm)
        if size is None:
            ignored.append(algorithm)
            continue
        value = member[0] if isinstance(member, tuple) else member
        if not isinstance(value, bytes):
            raise BadRequest(f"{name}: {algorithm} must be a byte sequence (:base64:)")
        if len(value) != size:
            raise BadRequest(f"{name}: a {algorithm} digest is {size} bytes, not {len(value)}")
        digests[algorithm] = value
    if ignored:
        log.info("%s: ignored algorithms %s", name, ", ".join(ignored[:8]))
    return digests


def format_digests(digests: Mapping[str, bytes]) -> str:
    """A digest field's value: ``sha-256=:<base64>:, …``."""
    return str(http_sf.ser({a: (d, {}) for a, d in digests.items()}))


def as_hex(digests: Mapping[str, bytes]) -> dict[str, str]:
    """Digests as the record keeps them: lowercase hex."""
    return {a: d.hex() for a, d in digests.items()}


def from_hex(digests: Mapping[str, str]) -> dict[str, bytes]:
    return {a: bytes.fromhex(d) for a, d in digests.items()}


def declared_extra(values: Iterable[str]) -> dict[str, dict[str, str]]:
    """What a creation's ``Repr-Digest`` adds to its record's ``extra``:
    ``{DECLARED: {algorithm: hex}}``, or nothing."""
    digests = parse_digests(values)
    return {DECLARED: as_hex(digests)} if digests else {}


def sha256_field(hex_digest: object) -> str | None:
    """``Repr-Digest`` for a SHA-256 kept as lowercase hex (None if it is not one)."""
    if not isinstance(hex_digest, str) or len(hex_digest) != 64:
        return None
    try:
        return format_digests({"sha-256": bytes.fromhex(hex_digest)})
    except ValueError:
        return None
