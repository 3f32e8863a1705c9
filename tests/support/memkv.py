"""Helpers for unit tests of backends: an in-memory KV and a budget."""

from __future__ import annotations


class MemoryKV:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], str] = {}

    async def kv_get(self, namespace: str, key: str) -> str | None:
        return self.data.get((namespace, key))

    async def kv_set(self, namespace: str, key: str, value: str) -> None:
        self.data[(namespace, key)] = value

    async def kv_delete(self, namespace: str, key: str) -> None:
        self.data.pop((namespace, key), None)
