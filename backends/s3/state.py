"""A stream's private state as the core persists it (``StreamInfo.state``).

Unsealed: the multipart upload (``upload_id`` on ``key``), the ETags of its
full parts — part *n* always holds bytes ``[(n-1)·part_size, n·part_size)``,
so a part number follows from an offset — and the ``tail``: the bytes past
the last full part, kept as one or more small objects, each named by its
byte range. Sealed: the stream is the object ``key`` of ``size`` bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backends.base import JSON
from backends.errors import InvalidState


@dataclass(frozen=True)
class Piece:
    """A temporary object holding bytes ``[start, end)`` of a stream."""

    key: str
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass
class StreamState:
    upload_id: str
    key: str
    part_size: int
    parts: list[str] = field(default_factory=list)
    tail: list[Piece] = field(default_factory=list)
    sealed: bool = False
    size: int = 0
    #: ``key`` is a temporary of ours (a stream without a final key)
    temporary: bool = False
    #: the checksum algorithm the upload was created with ("CRC32"), if any:
    #: every part then carries its checksum, listed again at completion
    checksum: str | None = None
    #: the parts' checksums (base64), "" where unknown; as long as ``parts``
    checksums: list[str] = field(default_factory=list)

    @property
    def single(self) -> bool:
        """A stream stored with one PutObject: no multipart upload."""
        return not self.upload_id

    @property
    def parts_end(self) -> int:
        """The offset after the last full part."""
        return len(self.parts) * self.part_size

    @property
    def tail_size(self) -> int:
        return sum(p.size for p in self.tail)

    def to_json(self) -> JSON:
        return {
            "upload_id": self.upload_id,
            "key": self.key,
            "part_size": self.part_size,
            "parts": list(self.parts),
            "tail": [[p.key, p.start, p.end] for p in self.tail],
            "sealed": self.sealed,
            "size": self.size,
            "temporary": self.temporary,
            "checksum": self.checksum,
            "checksums": list(self.checksums),
        }

    @classmethod
    def from_json(cls, data: JSON) -> StreamState:
        try:
            return cls(
                upload_id=str(data["upload_id"]),
                key=str(data["key"]),
                part_size=int(data["part_size"]),
                parts=[str(e) for e in data["parts"]],
                tail=[Piece(str(k), int(s), int(e)) for k, s, e in data["tail"]],
                sealed=bool(data.get("sealed", False)),
                size=int(data.get("size", 0)),
                temporary=bool(data.get("temporary", False)),
                checksum=str(data["checksum"]) if data.get("checksum") else None,
                checksums=[str(c) for c in data.get("checksums", [""] * len(data["parts"]))],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidState(f"not an S3 stream state: {exc}") from exc

    def copy(self, **changes: Any) -> StreamState:
        values = {
            **self.__dict__,
            "parts": list(self.parts),
            "tail": list(self.tail),
            "checksums": list(self.checksums),
        }
        values.update(changes)
        return StreamState(**values)

    def check_offset(self, offset: int) -> None:
        if self.sealed:
            raise InvalidState("the stream is already sealed")
        if self.parts_end + self.tail_size != offset:
            raise InvalidState(
                f"recorded offset {offset} disagrees with the stored pieces "
                f"({len(self.parts)} parts + {self.tail_size} tail bytes)"
            )
        expected = self.parts_end
        for piece in self.tail:
            if piece.start != expected:
                raise InvalidState("the tail pieces are not contiguous")
            expected = piece.end
