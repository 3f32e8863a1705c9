"""The tus extensions this gateway offers (every backend supports all of
them; ``checksum-trailer`` only where aiohttp exposes trailers)."""

from __future__ import annotations

from gateway import http_trailers
from gateway.core import ALGORITHMS

EXTENSIONS = [
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "termination",
    "expiration",
    "checksum",
    "checksum-trailer",
    "concatenation",
    "concatenation-unfinished",
]


def extensions() -> list[str]:
    return [n for n in EXTENSIONS if n != "checksum-trailer" or http_trailers.available()]


def checksum_algorithms() -> str:
    return ",".join(ALGORITHMS)
