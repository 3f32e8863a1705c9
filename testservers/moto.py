"""moto's S3 server on a free loopback port.

moto accepts any credentials and any presigned URL (no auth checks), and
keeps objects in RAM: keep them small. State lives only in the process, so
**stop()/restart()/kill() lose every bucket and object** (the port stays
the same); `reset()` clears state without a restart.

`min_part_size` sets `S3_UPLOAD_PART_MIN_SIZE` (default 5 MiB like AWS).

`python -m testservers.moto` prints the endpoint as JSON and waits.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import ServerBase, serve_main
from .ports import LOOPBACK, free_port, wait_for_http

_DEFAULT_KEY_BUFFER = 5 * 1024 * 1024 - 1024  # moto's default, set explicitly


class MotoServer(ServerBase):
    """moto_server. Endpoint: `endpoint_url` (starts lazily); any key/secret works."""

    name = "moto"
    access_key = "testing"
    secret_key = "testing"
    region = "us-east-1"

    def __init__(
        self,
        *,
        min_part_size: int | None = None,
        env: Mapping[str, str] | None = None,
        base_dir: str | Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(base_dir=base_dir, startup_timeout=startup_timeout)
        self.min_part_size = min_part_size
        self.extra_env = dict(env or {})
        self._port = 0
        self.last_start_seconds = 0.0

    @property
    def port(self) -> int:
        self._ensure_started()
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def info(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region": self.region,
            "min_part_size": self.min_part_size,
            "port": self.port,
        }

    def reset(self) -> None:
        """Drop all buckets and objects (POST /moto-api/reset)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10):
            pass

    def _prepare(self) -> None:
        self._port = free_port()

    def _launch(self) -> None:
        t0 = time.monotonic()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_DEFAULT_REGION=self.region,
        )
        if self.min_part_size is not None:
            env["S3_UPLOAD_PART_MIN_SIZE"] = str(self.min_part_size)
            env.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(_DEFAULT_KEY_BUFFER))
        env.update(self.extra_env)
        proc = self._spawn(
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self._port)],
            "moto",
            env=env,
        )
        wait_for_http(
            f"http://{LOOPBACK}:{self._port}/moto-api/data.json",
            timeout=self.startup_timeout,
            ok=lambda s: s == 200,
            procs=[proc],
        )
        self.last_start_seconds = time.monotonic() - t0


if __name__ == "__main__":
    serve_main(MotoServer())
