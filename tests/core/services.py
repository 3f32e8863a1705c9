"""A real ``UploadService`` for core tests: a local store under ``tmp_path``
and the state store (and locks) the ``state`` fixture names."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.app import close_service, open_service
from gateway.config import load_config
from gateway.core.service import UploadService


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
