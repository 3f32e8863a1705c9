"""Several gateway instances sharing Redis (state + locks) and one store,
behind a RandomProxy."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from tests.scaleout.proxy import RandomProxy
from testservers.gateway import GatewayProcess

QINIU_AK, QINIU_SK, QINIU_BUCKET = "scale-ak", "scale-sk", "photos"


def cluster_config(
    redis_url: str, data_root: Path, backend: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        # behind the RandomProxy, which sets X-Forwarded-* (Location names the proxy)
        "server": {"trust_forwarded": True},
        # by default a shared directory stands for the object store's own cluster
        "backends": {"default": backend or {"type": "local", "root": str(data_root)}},
        "buckets": {
            "default": {"backend": "default"},
            QINIU_BUCKET: {"backend": "default", "prefix": "q/"},
        },
        "qiniu": {"enabled": True, "keys": [{"access_key": QINIU_AK, "secret_key": QINIU_SK}]},
        "state": {"type": "redis", "url": redis_url},
        "locks": {"type": "redis", "url": redis_url, "acquire_timeout": 10},  # default lease
        "uploads": {"sweep_interval": 1},
    }


class Cluster:
    def __init__(
        self, redis_url: str, instances: int = 3, backend: dict[str, Any] | None = None
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gw-cluster-"))
        config = cluster_config(redis_url, self.root / "store", backend)
        self.gateways = [GatewayProcess(config, workdir=self._workdir(i)) for i in range(instances)]
        self.proxy: RandomProxy | None = None

    def _workdir(self, i: int) -> Path:
        path = self.root / f"gw{i}"
        path.mkdir()
        return path

    @property
    def files_url(self) -> str:
        assert self.proxy is not None
        return f"{self.proxy.url}/files/"

    def start(self) -> Cluster:
        try:
            for gw in self.gateways:
                gw.start()
            self.proxy = RandomProxy([gw.url for gw in self.gateways]).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        for gw in self.gateways:
            gw.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def revive(self) -> None:
        """Start instances that were killed, on their old ports."""
        for gw in self.gateways:
            if gw.proc is None or gw.proc.poll() is not None:
                gw.start()

    def logs(self) -> str:
        return "\n".join(f"--- gateway {i}\n{gw.log()}" for i, gw in enumerate(self.gateways))
