"""Helpers the form, v1 and v2 endpoints share: the first bytes of a body
(for MIME sniffing), an empty body, and the user fields of a request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from gateway.content_types import SNIFF_BYTES


class Head:
    """A hasher that keeps the first ``size`` bytes it sees."""

    def __init__(self, size: int = SNIFF_BYTES) -> None:
        self.size = size
        self.data = bytearray()

    def update(self, data: bytes, /) -> None:
        if len(self.data) < self.size:
            self.data += data[: self.size - len(self.data)]


async def empty_body() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover


def user_metadata(fields: Mapping[str, Any]) -> dict[str, str]:
    """``x-qn-meta-*`` fields: the object's own metadata."""
    return {str(k): str(v) for k, v in fields.items() if str(k).lower().startswith("x-qn-meta-")}


def custom_vars(fields: Mapping[str, Any]) -> dict[str, str]:
    """``x:*`` fields: custom variables for ``returnBody`` / callbacks."""
    return {str(k): str(v) for k, v in fields.items() if str(k).startswith("x:")}
