"""For core tests: a real ``UploadService`` (a local store under ``tmp_path``
and the state store and locks the ``state`` fixture names), a bare state
store, a sample record."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from gateway.app import close_service, open_service
from gateway.config import load_config
from gateway.core.records import Kind, UploadRecord
from gateway.core.service import UploadService
from gateway.core.state.base import StateStore

T = TypeVar("T")


def run(
    tmp_path: Path, state: dict[str, Any], body: Callable[[UploadService], Awaitable[None]]
) -> None:
    config = load_config(
        {
            "backends": {"default": {"type": "local", "root": str(tmp_path / "data")}},
            "buckets": {"default": {"backend": "default"}},
            "state": state,
            "locks": {"type": "redis", "url": state["url"]}
            if state["type"] == "redis"
            else {"type": "memory"},
        }
    )

    async def main() -> None:
        service = await open_service(config)
        try:
            await body(service)
        finally:
            await close_service(service)

    asyncio.run(main())


def run_store(make_store: Callable[[], StateStore], body: Callable[[Any], Awaitable[T]]) -> T:
    """``body(store)`` on a freshly opened store, closed afterwards."""

    async def main() -> T:
        store = make_store()
        await store.open()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def record(upload_id: str = "u1", expires_at: float | None = 100.0) -> UploadRecord:
    return UploadRecord(
        id=upload_id,
        protocol="tus",
        kind=Kind.UPLOAD,
        bucket="default",
        key=upload_id,
        length=10,
        expires_at=expires_at,
        backend_state={"private": 1},
    )
