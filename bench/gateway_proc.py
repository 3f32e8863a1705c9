"""One gateway process (``python -m gateway serve``) on a free loopback port."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

QINIU_AK = "bench-ak"
QINIU_SK = "bench-sk"
TUS_PATH = "/files/"
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def qiniu_available() -> bool:
    try:
        import gateway.protocols.qiniu as q
    except ImportError:
        return False
    return hasattr(q, "setup")


def gateway_config(backend: dict[str, Any], workdir: Path, qiniu: bool) -> dict[str, Any]:
    config: dict[str, Any] = {
        "backends": {"default": backend},
        "buckets": {"default": {"backend": "default"}},
        "tus": {"path": TUS_PATH, "bucket": "default"},
        "state": {"type": "sqlite", "path": str(workdir / "state.db")},
        # the sweeper stays out of the measurements
        "uploads": {"sweep_interval": 3600},
    }
    if qiniu:
        config["qiniu"] = {
            "enabled": True,
            "keys": [{"access_key": QINIU_AK, "secret_key": QINIU_SK}],
        }
    return config


class Gateway:
    def __init__(self, config: dict[str, Any], workdir: Path, log_path: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Gateway:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "config.yaml"
        cfg.write_text(yaml.safe_dump(self.config))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway",
                    "serve",
                    "-c",
                    str(cfg),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited ({self.proc.returncode}); see {self.log_path}")
            try:
                if self._request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gateway did not answer in {timeout}s; see {self.log_path}")
            time.sleep(0.05)
        self.warm_up()
        return self

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()

    def warm_up(self) -> None:
        """Two small tus uploads, so that first-request costs stay out of the figures."""
        data = os.urandom(256 * 1024)
        for _ in range(2):
            status, h = self._request(
                "POST",
                TUS_PATH,
                headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data))},
            )
            if status != 201:
                raise RuntimeError(f"warm-up POST answered {status}; see {self.log_path}")
            location = urlsplit(h["location"]).path
            status, _ = self._request(
                "PATCH",
                location,
                body=data,
                headers={
                    "Tus-Resumable": "1.0.0",
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            if status != 204:
                raise RuntimeError(f"warm-up PATCH answered {status}; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
