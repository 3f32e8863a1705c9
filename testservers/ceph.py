"""A one-node Ceph cluster with the RADOS gateway (Ceph's S3 API) on loopback.

One monitor, one OSD on ``memstore`` (RAM, capped at ``store_bytes``), no
manager, ``auth none``, and ``radosgw`` with its beast frontend: three
processes on free ports, with config, monitor store, logs and sockets in one
temporary directory. From Debian's ``ceph-mon ceph-osd radosgw`` packages
(Ceph 16 Pacific on Debian 12), installed by scripts/install-test-deps.sh.

Credentials: an S3 user created with ``radosgw-admin`` (``access_key`` /
``secret_key`` below); path-style, region ``us-east-1``. RGW checks
signatures, presigned-URL expiry and Content-MD5, and keeps S3's 5 MiB
minimum part (``min_part_size`` sets ``rgw_multipart_min_part_size``).

Objects live in the OSD's RAM: ``stop()`` keeps nothing, so ``restart()``
is not offered beyond what ``ServerBase`` does (a new, empty store needs a
new ``CephServer``).

`python -m testservers.ceph` prints the endpoint as JSON and waits.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from . import ServerBase, serve_main
from .ports import LOOPBACK, ServerStartError, free_ports, wait_for_http

MiB = 1024 * 1024
_TOOLS = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool", "ceph-authtool")


def _tool(name: str) -> str:
    path = shutil.which(name) or f"/usr/sbin/{name}"
    if not Path(path).exists():
        raise ServerStartError(
            f"{name} not found: apt-get install ceph-mon ceph-osd radosgw "
            "(scripts/install-test-deps.sh does)"
        )
    return path


class CephServer(ServerBase):
    """mon + memstore OSD + radosgw. Endpoint: ``endpoint_url`` (starts lazily)."""

    name = "ceph"
    access_key = "ugw-test-access"
    secret_key = "ugw-test-secret"
    region = "us-east-1"

    def __init__(
        self,
        *,
        min_part_size: int = 5 * MiB,
        store_bytes: int = 2048 * MiB,
        base_dir: str | Path | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        super().__init__(base_dir=base_dir, startup_timeout=startup_timeout)
        self.min_part_size = min_part_size
        self.store_bytes = store_bytes
        self.ports: dict[str, int] = {}
        self.last_start_seconds = 0.0

    @property
    def endpoint_url(self) -> str:
        self._ensure_started()
        return f"http://{LOOPBACK}:{self.ports['rgw']}"

    @property
    def conf(self) -> Path:
        return self.directory / "ceph.conf"

    def info(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region": self.region,
            "ports": self.ports,
            "directory": str(self.directory),
        }

    def _run(self, *argv: str, timeout: float = 60.0) -> str:
        res = subprocess.run(
            [_tool(argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
        )
        if res.returncode != 0:
            raise ServerStartError(f"ceph: {' '.join(argv)} failed:\n{res.stderr[-2000:]}")
        return res.stdout

    def _prepare(self) -> None:
        for tool in _TOOLS:
            _tool(tool)
        mon, rgw = free_ports(2)
        self.ports = {"mon": mon, "rgw": rgw}
        d = self.directory
        for sub in ("run", "mon", "osd"):
            shutil.rmtree(d / sub, ignore_errors=True)
            (d / sub).mkdir()
        for name in ("keyring", "monmap"):
            (d / name).unlink(missing_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self.fsid = str(uuid.uuid4())
        self.conf.write_text(self._config())

    def _config(self) -> str:
        d = self.directory
        lines = {
            "fsid": self.fsid,
            "mon host": f"v2:{LOOPBACK}:{self.ports['mon']}",
            "mon initial members": "a",
            "auth cluster required": "none",
            "auth service required": "none",
            "auth client required": "none",
            # without these radosgw loops on error -13 under auth none
            "ms mon client mode": "crc",
            "ms client mode": "crc",
            "ms cluster mode": "crc",
            "ms service mode": "crc",
            "osd objectstore": "memstore",
            "memstore device bytes": str(self.store_bytes),
            "osd pool default size": "1",
            "osd pool default min size": "1",
            "osd pool default pg num": "8",
            "osd pool default pgp num": "8",
            "osd pool default pg autoscale mode": "off",
            "mon allow pool size one": "true",
            "mon warn on pool no redundancy": "false",
            "osd crush chooseleaf type": "0",
            "run dir": f"{d}/run",
            "admin socket": f"{d}/run/$name.asok",
            "log file": f"{d}/log/$name.log",
            "pid file": f"{d}/run/$name.pid",
            "mon data": f"{d}/mon/$name",
            "osd data": f"{d}/osd/$name",
            "keyring": f"{d}/keyring",
        }
        rgw = {
            "rgw frontends": f"beast endpoint={LOOPBACK}:{self.ports['rgw']}",
            "rgw multipart min part size": str(self.min_part_size),
            # deleted objects' RADOS data is reclaimed after 2 h by default:
            # memstore would fill up under a benchmark that deletes and rewrites
            "rgw gc obj min wait": "2",
            "rgw gc processor period": "2",
        }
        out = ["[global]", *(f"{k} = {v}" for k, v in lines.items()), "", "[client.rgw.gw]"]
        out += [f"{k} = {v}" for k, v in rgw.items()]
        return "\n".join(out) + "\n"

    def _stop_procs(self, sig: signal.Signals, timeout: float = 10.0) -> None:
        # memstore keeps nothing a clean shutdown would save (SIGTERM: ~5 s)
        super()._stop_procs(signal.SIGKILL, timeout)

    def _launch(self) -> None:
        if self._started_once:
            raise ServerStartError("ceph: memstore keeps nothing across a stop; start a new one")
        t0 = time.monotonic()
        conf = str(self.conf)
        self._run("ceph-authtool", "--create-keyring", "keyring", "--gen-key", "-n", "mon.",
                  "--cap", "mon", "allow *")  # fmt: skip
        self._run("monmaptool", "--create", "--addv", "a", f"[v2:{LOOPBACK}:{self.ports['mon']}]",
                  "--fsid", self.fsid, "monmap")  # fmt: skip
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", "monmap", "--keyring", "keyring",
                  "-c", conf)  # fmt: skip
        self._spawn([_tool("ceph-mon"), "-f", "-i", "a", "-c", conf], "mon")
        osd_uuid = str(uuid.uuid4())
        osd_id = self._run("ceph", "-c", conf, "--connect-timeout", "30", "osd", "new", osd_uuid)
        osd_id = osd_id.strip()
        (self.directory / "osd" / f"osd.{osd_id}").mkdir(exist_ok=True)
        self._run("ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid, "-c", conf)
        self._spawn([_tool("ceph-osd"), "-f", "-i", osd_id, "-c", conf], "osd")
        self._spawn([_tool("radosgw"), "-f", "-n", "client.rgw.gw", "-c", conf], "rgw")
        deadline = t0 + self.startup_timeout
        wait_for_http(
            f"http://{LOOPBACK}:{self.ports['rgw']}/",
            timeout=max(1.0, deadline - time.monotonic()),
            ok=lambda s: s == 200,
            procs=self._procs,
        )
        self._run("radosgw-admin", "-c", conf, "user", "create", "--uid", "ugw-test",
                  "--display-name", "upload-gateway tests", "--access-key", self.access_key,
                  "--secret-key", self.secret_key)  # fmt: skip
        self._warm_up()
        self.last_start_seconds = time.monotonic() - t0

    def _warm_up(self) -> None:
        """RGW creates its index, data and multipart pools on a new cluster's
        first bucket, object and multipart upload (10-30 s on a loaded
        machine): done here, under ``startup_timeout``, so that no gateway's
        start-up (30 s in the tests) pays for it."""
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )
        bucket, key = "ugw-warm-up", "warm-up"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x")
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        s3.delete_object(Bucket=bucket, Key=key)
        s3.delete_bucket(Bucket=bucket)


if __name__ == "__main__":
    serve_main(CephServer())
