"""Request bodies as backends take them: memory is drawn from the budget only
for bytes that came."""

from __future__ import annotations

from collections.abc import AsyncIterator


async def arrived(body: AsyncIterator[bytes]) -> AsyncIterator[bytes] | None:
    """``body`` once its first byte is here, or None if it ends first: budget
    is taken for bytes that came, never for a body that was only announced
    (idle requests with a large ``Content-Length`` would hold it all)."""
    async for chunk in body:
        if chunk:
            return chain([chunk], body)
    return None


async def chain(
    head: list[bytes | memoryview], rest: AsyncIterator[bytes] | None
) -> AsyncIterator[bytes]:
    """The chunks of ``head`` (as bytes), then those of ``rest``."""
    for chunk in head:
        yield bytes(chunk)
    if rest is not None:
        async for chunk in rest:
            yield chunk
