"""A real gateway process on a free loopback port, for tests that go over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Self

import yaml

from testservers.ports import free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[1]


class GatewayProcess:
    """``python -m gateway serve`` with the given config mapping.

    ``workdir`` holds config.yaml, the log and (for local backends) the data;
    the process is stopped by PID."""

    #: more ``gateway serve`` arguments
    extra_args: tuple[str, ...] = ()
    #: folders put on the process's ``PYTHONPATH`` before the project
    #: (a test's ``sitecustomize``)
    extra_path: tuple[str, ...] = ()

    def __init__(
        self, config: dict[str, Any], workdir: Path | None = None, log_path: Path | None = None
    ) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="gw-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = log_path or self.workdir / "gateway.log"
        self._started = False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def files_url(self) -> str:
        return f"{self.url}{self.config.get('tus', {}).get('path', '/files/')}"

    def start(self) -> Self:
        """Start (again on the same port and data). A first start whose port
        was taken meanwhile by another server is retried once on a new port."""
        try:
            return self._start()
        except RuntimeError as exc:
            if self._started or "address already in use" not in str(exc).lower():
                raise
            self.port = free_port()
            return self._start()

    def _start(self) -> Self:
        config = dict(self.config)
        config.setdefault("state", {"type": "sqlite", "path": str(self.workdir / "state.db")})
        (self.workdir / "config.yaml").write_text(yaml.safe_dump(config))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway",
                    "serve",
                    "-c",
                    str(self.workdir / "config.yaml"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self.extra_args,
                ],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": os.pathsep.join([*self.extra_path, str(ROOT)])},
            )
        try:
            wait_for_http(f"{self.url}/healthz", timeout=30, procs=[self.proc])
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"gateway did not start: {exc}\n{self.log()}") from exc
        self._started = True
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
