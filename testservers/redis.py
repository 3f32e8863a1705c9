"""redis-server on a free loopback port.

By default the data is kept in an append-only file in the launcher's
directory, so `stop()` (SIGTERM: Redis flushes on shutdown) and `restart()`
keep every key on the same port; `kill()` (SIGKILL) may lose the last
second. `persist=False` runs purely in memory (a restart then empties it).

`python -m testservers.redis` prints the URL as JSON and waits.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import ServerBase, serve_main
from .ports import LOOPBACK, free_port, wait_until


def redis_ping(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True if Redis answers PING with PONG (not while it is still loading)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(ServerBase):
    """redis-server. Endpoint: `url` (redis://127.0.0.1:PORT/0), `host`, `port` (starts lazily)."""

    name = "redis"
    host = LOOPBACK

    def __init__(
        self,
        *,
        persist: bool = True,
        extra_args: Sequence[str] = (),
        base_dir: str | Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(base_dir=base_dir, startup_timeout=startup_timeout)
        self.persist = persist
        self.extra_args = list(extra_args)
        self._port = 0
        self.last_start_seconds = 0.0

    @property
    def port(self) -> int:
        self._ensure_started()
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def info(self) -> dict[str, Any]:
        return {"url": self.url, "host": self.host, "port": self.port, "persist": self.persist}

    def _prepare(self) -> None:
        self._binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(self._binary).exists():
            raise FileNotFoundError("redis-server not found: run scripts/install-test-deps.sh")
        self._port = free_port()

    def _launch(self) -> None:
        t0 = time.monotonic()
        data = self.directory / "data"
        data.mkdir(exist_ok=True)
        argv = [
            self._binary,
            "--bind", LOOPBACK,
            "--port", str(self._port),
            "--daemonize", "no",
            "--dir", str(data),
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--appendfsync", "everysec",
            "--logfile", "",
            *self.extra_args,
        ]  # fmt: skip
        proc = self._spawn(argv, "redis")
        wait_until(
            lambda: redis_ping(self._port), self.startup_timeout, f"redis :{self._port}", [proc]
        )
        self.last_start_seconds = time.monotonic() - t0


if __name__ == "__main__":
    serve_main(RedisServer())
