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


#: a creation declaring the file's SHA-256 (``Repr-Digest``) may complete at
#: once (201 with ``Upload-Offset`` = ``Upload-Length``); README "Instant upload"
INSTANT_UPLOAD = "instant-upload"


def extensions(instant: bool = False) -> list[str]:
    """The extensions offered; ``instant`` when the tus bucket has instant upload on."""
    names = [n for n in EXTENSIONS if n != "checksum-trailer" or http_trailers.available()]
    return [*names, INSTANT_UPLOAD] if instant else names


def checksum_algorithms() -> str:
    return ",".join(ALGORITHMS)
