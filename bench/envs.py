"""The stores the gateway is benchmarked on, each with its direct baseline.

An environment starts its store (through ``testservers/``), gives the
gateway's ``backends.default`` mapping, the ``bench.baselines`` command that
writes the same bytes straight to the store, and empties the store between
measurements. ``skip_reason()`` says why it cannot run here (backend not
landed yet, server not installed, config rejected), so the run skips it with a
note instead of failing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from bench.scenarios import Scenario

PY = sys.executable


def _backend_check(mapping: dict[str, Any]) -> str | None:
    """None if the gateway can build this backend config, else why not."""
    from pydantic import ValidationError

    from backends.errors import BackendConfigError
    from backends.registry import backend_class

    try:
        cls = backend_class(str(mapping["type"]))
        cls.config_model.model_validate(mapping)
    except BackendConfigError as exc:
        return str(exc)
    except ValidationError as exc:
        return f"config rejected: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
    except Exception as exc:  # a backend still being written
        return f"backend {mapping['type']!r} not usable yet: {type(exc).__name__}: {exc}"
    return None


class Env:
    name = "?"
    description = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)

    def skip_reason(self) -> str | None:
        return _backend_check(self.backend_config(probe=True))

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def backend_config(self, probe: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def baselines(self, sc: Scenario) -> list[tuple[str, list[str]]]:
        """(label, argv) of each direct baseline for ``sc``; the first is the
        one the targets compare with."""
        return []

    def clean(self) -> None:
        """Remove what the last measurement stored."""

    def aux_pids(self) -> list[int]:
        """Processes of the store (their CPU is reported beside the gateway's)."""
        return []


class LocalEnv(Env):
    name = "local"
    description = "local disk (backends/local.py, fsync on finish)"

    @property
    def root(self) -> Path:
        return self.workdir / "data"

    def backend_config(self, probe: bool = False) -> dict[str, Any]:
        return {"type": "local", "root": str(self.root)}

    def baselines(self, sc: Scenario) -> list[tuple[str, list[str]]]:
        return [
            (
                "disk write+fsync",
                [
                    PY,
                    "-m",
                    "bench.baselines",
                    "disk",
                    "--dir",
                    str(self.workdir / "baseline"),
                    *sc.size_args(),
                ],
            )
        ]

    def clean(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def s3_client(endpoint: str, ak: str, sk: str, region: str = "us-east-1", **config: Any) -> Any:
    """A boto3 S3 client for a loopback store (path-style addressing);
    ``config``: more ``botocore.config.Config`` options."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        config=Config(s3={"addressing_style": "path"}, **config),
    )


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> None:
    """DeleteObjects, 1,000 keys at a time; one by one where the store
    refuses it (Swift 2.30's s3api wants a Content-MD5 that current boto3
    replaces with a CRC32)."""
    from botocore.exceptions import ClientError

    for i in range(0, len(keys), 1000):
        batch = keys[i : i + 1000]
        try:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch]})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidRequest":
                raise
            for key in batch:
                s3.delete_object(Bucket=bucket, Key=key)


class _S3Env(Env):
    bucket = "bench"
    server: Any

    def _endpoint(self) -> tuple[str, str, str]:
        raise NotImplementedError

    def backend_config(self, probe: bool = False) -> dict[str, Any]:
        endpoint, ak, sk = ("http://127.0.0.1:1", "ak", "sk") if probe else self._endpoint()
        return {
            "type": "s3",
            "endpoint_url": endpoint,
            "bucket": self.bucket,
            "access_key": ak,
            "secret_key": sk,
            "region": "us-east-1",
            "addressing_style": "path",
        }

    def start(self) -> None:
        self.server.start()
        endpoint, ak, sk = self._endpoint()
        s3_client(endpoint, ak, sk).create_bucket(Bucket=self.bucket)

    def stop(self) -> None:
        self.server.close()

    def aux_pids(self) -> list[int]:
        return list(self.server.pids)

    def baselines(self, sc: Scenario) -> list[tuple[str, list[str]]]:
        endpoint, ak, sk = self._endpoint()
        argv = [PY, "-m", "bench.baselines", "s3", "--endpoint", endpoint, "--bucket",
                self.bucket, "--ak", ak, "--sk", sk, *sc.size_args()]  # fmt: skip
        out = [("boto3 8M×10", argv)]
        if sc.count == 1 and sc.size > 8 << 20:
            # one part in flight, as a client's 8 MiB PATCHes allow
            out.append(("boto3 8M×1", [*argv, "--threads", "1"]))
        if sc.kind in ("qiniu-v1", "qiniu-v2"):
            # the Qiniu SDKs' resumable uploads send three blocks / parts at a time
            out.append(("boto3 8M×3", [*argv, "--threads", "3"]))
        if sc.kind == "qiniu-v2" and sc.part >= 5 << 20:
            # the SDK through the thinnest v2 server: the most any gateway reaches with it
            relay = [PY, "-m", "bench.sdk_pace", "once", "--endpoint", endpoint,
                     "--bucket", self.bucket, "--ak", ak, "--sk", sk,
                     "--part-size", str(sc.part), *sc.size_args()]  # fmt: skip
            out.append(("SDK via bare relay", relay))
        return out

    def clean(self) -> None:
        s3 = s3_client(*self._endpoint())
        for u in s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=self.bucket, Key=u["Key"], UploadId=u["UploadId"])
        while objs := s3.list_objects_v2(Bucket=self.bucket).get("Contents", []):
            delete_keys(s3, self.bucket, [o["Key"] for o in objs])


class MotoEnv(_S3Env):
    name = "s3-moto"
    description = "S3 via moto_server (objects in RAM)"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        from testservers.moto import MotoServer

        self.server = MotoServer(base_dir=self.workdir / "server")

    def _endpoint(self) -> tuple[str, str, str]:
        return self.server.endpoint_url, self.server.access_key, self.server.secret_key


def _swift_missing() -> str | None:
    try:
        from testservers.swift import find_swift_bin_dir

        find_swift_bin_dir()
    except Exception as exc:
        return str(exc).splitlines()[0]
    if not shutil.which("memcached"):
        return "memcached not installed (apt-get install memcached)"
    return None


class SwiftS3Env(_S3Env):
    name = "s3-swift"
    description = "S3 via Swift's s3api (all-in-one Swift on loopback)"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        from testservers.swift import SwiftServer

        self.server = SwiftServer()

    def skip_reason(self) -> str | None:
        return _swift_missing() or super().skip_reason()

    def _endpoint(self) -> tuple[str, str, str]:
        return self.server.s3_endpoint, self.server.access_key, self.server.secret_key


class Swift230S3Env(SwiftS3Env):
    name = "s3-swift230"
    description = "S3 via Debian 12's Swift 2.30 s3api (no flexible checksums)"

    def __init__(self, workdir: Path) -> None:
        _S3Env.__init__(self, workdir)
        from testservers.swift import SwiftServer

        self.server = SwiftServer(bin_dir=_DEBIAN_SWIFT.parent)

    def skip_reason(self) -> str | None:
        if not _DEBIAN_SWIFT.is_file():
            return f"{_DEBIAN_SWIFT} missing (scripts/install-test-deps.sh installs it)"
        return super().skip_reason()


_DEBIAN_SWIFT = Path("/usr/bin/swift-proxy-server")


class CephEnv(_S3Env):
    name = "s3-ceph"
    description = "S3 via Ceph RGW 16 (one mon, one memstore OSD, radosgw)"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        from testservers.ceph import CephServer

        # memstore holds objects in RAM until RGW's garbage collection frees them
        self.server = CephServer(base_dir=self.workdir / "server", store_bytes=6 << 30)

    def skip_reason(self) -> str | None:
        if not shutil.which("radosgw"):
            return "radosgw not installed (scripts/install-test-deps.sh installs it)"
        return super().skip_reason()

    def _endpoint(self) -> tuple[str, str, str]:
        return self.server.endpoint_url, self.server.access_key, self.server.secret_key


class SwiftEnv(Env):
    name = "swift"
    description = "native Swift (SLO segments), all-in-one on loopback"
    container = "bench"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        from testservers.swift import SwiftServer

        self.server = SwiftServer()

    def skip_reason(self) -> str | None:
        return _swift_missing() or super().skip_reason()

    def backend_config(self, probe: bool = False) -> dict[str, Any]:
        auth = "http://127.0.0.1:1/auth/v1.0" if probe else self.server.auth_url
        return {
            "type": "swift",
            "auth_url": auth,
            "user": "test:tester",
            "key": "testing",
            "container": self.container,
            "temp_url_key": "bench-temp-url-key",
            "set_temp_url_key": True,
        }

    def _request(self, method: str, url: str) -> int:
        req = urllib.request.Request(
            url, method=method, headers={"X-Auth-Token": self.server.auth_token()}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=30) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def start(self) -> None:
        self.server.start()
        for c in (self.container, f"{self.container}_segments"):
            self._request("PUT", f"{self.server.storage_url}/{c}")

    def stop(self) -> None:
        self.server.close()

    def aux_pids(self) -> list[int]:
        return list(self.server.pids)

    def baselines(self, sc: Scenario) -> list[tuple[str, list[str]]]:
        return [
            (
                "segments 8M×10+SLO",
                [
                    PY,
                    "-m",
                    "bench.baselines",
                    "swift",
                    "--storage-url",
                    self.server.storage_url,
                    "--token",
                    self.server.auth_token(),
                    "--container",
                    self.container,
                    *sc.size_args(),
                ],
            )
        ]

    def clean(self) -> None:
        import json

        token = self.server.auth_token()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for c in (self.container, f"{self.container}_segments"):
            while True:
                req = urllib.request.Request(
                    f"{self.server.storage_url}/{c}?format=json",
                    headers={"X-Auth-Token": token},
                )
                with opener.open(req, timeout=30) as r:
                    names = [o["name"] for o in json.loads(r.read() or b"[]")]
                if not names:
                    break
                for n in names:
                    q = urllib.parse.quote(n)
                    self._request("DELETE", f"{self.server.storage_url}/{c}/{q}")


class FastDFSEnv(Env):
    name = "fastdfs"
    description = "FastDFS test server (testservers/fastdfs_server.py, appender files)"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.proc: subprocess.Popen[bytes] | None = None
        self.tracker = ""

    def backend_config(self, probe: bool = False) -> dict[str, Any]:
        return {"type": "fastdfs", "trackers": ["127.0.0.1:1" if probe else self.tracker]}

    def start(self) -> None:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "fastdfs.log", "wb") as log:
            self.proc = subprocess.Popen(
                [PY, "-m", "testservers.fastdfs_server", "--port", "0", "--dir", str(data)],
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("tracker="):
            self.stop()
            raise RuntimeError(f"FastDFS test server did not start: {line!r}")
        self.tracker = line.split()[0].split("=", 1)[1]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.workdir / "data", ignore_errors=True)

    def aux_pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def baselines(self, sc: Scenario) -> list[tuple[str, list[str]]]:
        return [
            (
                "client append 8M",
                [
                    PY,
                    "-m",
                    "bench.baselines",
                    "fastdfs",
                    "--tracker",
                    self.tracker,
                    *sc.size_args(),
                ],
            )
        ]

    def clean(self) -> None:
        data = self.workdir / "data" / "data"
        if data.is_dir():
            for p in data.rglob("*"):
                if p.is_file():
                    p.unlink()


ENVS: dict[str, type[Env]] = {
    e.name: e for e in (LocalEnv, MotoEnv, SwiftS3Env, Swift230S3Env, CephEnv, SwiftEnv, FastDFSEnv)
}
