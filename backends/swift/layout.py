"""Names in the segments container and the backend's private stream state
(see the package docstring for the rules they serve)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from backends.base import JSON
from backends.errors import InvalidState

_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
OWNER = "owner"


def stream_prefix(stream_id: str) -> str:
    """``<stream id>/``: everything a stream stores lives under it. Ids that are
    not short and plain are replaced by their SHA-256."""
    if not _SAFE_ID.fullmatch(stream_id):
        stream_id = hashlib.sha256(stream_id.encode()).hexdigest()
    return stream_id + "/"


def segment_name(stream_id: str, start: int, write: int) -> str:
    """A segment holding the stream's bytes from ``start``, made by the write
    that began at ``write`` (a tail rewritten by a later write gets a new name;
    the same write repeated gets the same one)."""
    return f"{stream_prefix(stream_id)}{start:016x}-{write:016x}"


def owner_name(stream_id: str) -> str:
    """The marker naming the object whose manifest references the stream."""
    return stream_prefix(stream_id) + OWNER


def submanifest_name(stream_id: str, level: int, index: int) -> str:
    return f"{stream_prefix(stream_id)}manifest/{level}-{index:06d}"


def stream_of(name: str) -> str:
    """The stream prefix (``<id>/``) of a name in the segments container."""
    head, sep, _ = name.partition("/")
    return head + sep


@dataclass(frozen=True)
class Segment:
    name: str
    size: int
    etag: str


def load_segments(state: JSON, offset: int) -> list[Segment]:
    """The segments recorded in a stream's state; their sizes must add up to
    the stream's offset."""
    try:
        segments = [Segment(str(n), int(s), str(e)) for n, s, e in state.get("segments", [])]
    except (TypeError, ValueError) as exc:
        raise InvalidState(f"unreadable swift stream state: {exc}") from exc
    total = sum(s.size for s in segments)
    if total != offset:
        raise InvalidState(f"swift segments hold {total} bytes, the stream's offset is {offset}")
    return segments


def dump_segments(segments: Iterable[Segment]) -> JSON:
    return {"segments": [[s.name, s.size, s.etag] for s in segments]}
