"""The tus extensions this gateway offers for a bucket, derived from the
backend's capability record: the same record decides what is advertised
(``Tus-Extension``) and what the handlers accept."""

from __future__ import annotations

from backends.base import Capability
from gateway import http_trailers
from gateway.core.checksums import ALGORITHMS

#: extension → capabilities the backend needs for it
REQUIREMENTS: dict[str, frozenset[Capability]] = {
    "creation": frozenset(),
    "creation-with-upload": frozenset(),
    "creation-defer-length": frozenset({Capability.DEFERRED_LENGTH}),
    "termination": frozenset({Capability.TERMINATE}),
    "expiration": frozenset({Capability.TERMINATE}),
    "checksum": frozenset({Capability.ROLLBACK}),
    "checksum-trailer": frozenset({Capability.ROLLBACK}),
    "concatenation": frozenset({Capability.ASSEMBLE}),
    "concatenation-unfinished": frozenset({Capability.ASSEMBLE}),
}


def extensions_for(capabilities: frozenset[Capability]) -> list[str]:
    return [
        name
        for name, needs in REQUIREMENTS.items()
        if needs <= capabilities and (name != "checksum-trailer" or http_trailers.available())
    ]


def checksum_algorithms() -> str:
    return ",".join(ALGORITHMS)
