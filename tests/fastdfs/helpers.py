"""Small helpers shared by the FastDFS tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from backends.fastdfs.client import FastDFSClient
from testservers.fastdfs_server import FastDFSServer

T = TypeVar("T")
MiB = 1 << 20


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def addr(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def client_for(server: FastDFSServer, **options: Any) -> FastDFSClient:
    return FastDFSClient([addr(server.tracker_addr)], **options)


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
