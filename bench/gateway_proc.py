"""One gateway process (``python -m gateway serve``) on a free loopback port:
the tests' launcher (``testservers/gateway.py``), warmed up, and its config."""

from __future__ import annotations

import http.client
import os
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from bench.loaded import measured
from testservers.gateway import GatewayProcess

QINIU_AK = "bench-ak"
QINIU_SK = "bench-sk"
TUS_PATH = "/files/"


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


class Gateway(GatewayProcess):
    """The tests' gateway process, quieter, warmed up once it answers."""

    extra_args: tuple[str, ...] = ("--log-level", "warning")

    @property
    def base_url(self) -> str:
        return self.url

    def start(self) -> Self:
        super().start()
        try:
            self.warm_up()
        except BaseException:
            self.stop()  # a failed warm-up must not leave the gateway running
            raise
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


def tus_load_cpu(
    config: dict[str, Any],
    workdir: Path,
    *,
    size: int,
    chunk: int,
    count: int,
    concurrency: int,
    access_log: bool = False,
) -> dict[str, Any]:
    """Start a gateway with ``config``, run ``count`` tus uploads of ``size``
    bytes in PATCHes of ``chunk`` (``bench.load``) and return the gateway
    process's CPU seconds over the load alone, the wall time and the uploads
    (``bench.loaded.measured``)."""
    gateway = Gateway(config, workdir=workdir)
    gateway.extra_args = ("--log-level", "warning") + (() if access_log else ("--no-access-log",))
    with gateway:
        load = [
            "tus", "--url", f"{gateway.url}{TUS_PATH}", "--size", str(size),
            "--chunk", str(chunk), "--count", str(count), "-c", str(concurrency),
        ]  # fmt: skip
        return measured(gateway.pid, load)
