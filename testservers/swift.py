"""All-in-one OpenStack Swift on loopback: tempauth, s3api, SLO/DLO, tempurl, COPY.

One replica, one device, `workers = 0`: memcached plus the account,
container, object and proxy servers, five processes on free ports, with
configs, rings, data and logs in one temporary directory (on a filesystem
with user xattrs, which Swift needs). Swift comes from PyPI (`swift`, its
`swift-*-server` scripts beside `sys.executable`) or from Debian's
packages (`/usr/bin`); the rings are built with `RingBuilder` by the
Python that runs those scripts, in a subprocess, so this process never
imports Swift (or eventlet).

Credentials: tempauth user `test:tester` / key `testing` (account
`AUTH_test`); the same pair is the S3 access key / secret (path-style,
region `us-east-1`); the S3 API checks signatures and presigned-URL expiry.

`stop()`/`restart()` stop and restart all five processes on the same ports
and data: objects survive, but tempauth tokens (kept in memcached) do not,
so a client must re-authenticate after a 401 (as after token expiry).

`python -m testservers.swift` prints the endpoints as JSON and waits.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import ServerBase, serve_main
from .ports import (
    LOOPBACK,
    ServerStartError,
    free_ports,
    port_open,
    wait_for_http,
    wait_for_port,
)

MiB = 1024 * 1024
KINDS = ("object", "container", "account")

_PIPELINE = (
    "catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl "
    "s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server"
)

_RING_SCRIPT = """
import json, sys
from swift.common.ring import RingBuilder
etc, ports = sys.argv[1], json.loads(sys.argv[2])
for kind, port in ports.items():
    b = RingBuilder(6, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
               "device": "sdb1", "weight": 100})
    b.rebalance(seed=1)
    b.get_ring().save(f"{etc}/{kind}.ring.gz")
"""


def find_swift_bin_dir(explicit: str | Path | None = None) -> Path:
    """Folder with swift-proxy-server: given, beside sys.executable (PyPI) or on PATH (Debian)."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit))
    if os.environ.get("UGW_SWIFT_BIN_DIR"):
        candidates.append(Path(os.environ["UGW_SWIFT_BIN_DIR"]))
    candidates.append(Path(sys.executable).parent)
    which = shutil.which("swift-proxy-server")
    if which:
        candidates.append(Path(which).parent)
    candidates.append(Path("/usr/bin"))
    for d in candidates:
        if (d / "swift-proxy-server").is_file():
            return d
    raise ServerStartError(
        "swift-proxy-server not found: `pip install swift` into this venv "
        "(or apt-get install swift-proxy ...); see scripts/install-test-deps.sh"
    )


def _script_python(script: Path) -> str:
    """The interpreter named by a script's shebang (the Python that has swift)."""
    with open(script, "rb") as f:
        first = f.readline().decode(errors="replace").strip()
    if first.startswith("#!"):
        parts = first[2:].split()
        if parts and parts[0].endswith("/env") and len(parts) > 1:
            return shutil.which(parts[1]) or parts[1]
        if parts:
            return parts[0]
    return sys.executable


def _render(sections: Mapping[str, Mapping[str, str]]) -> str:
    out: list[str] = []
    for name, opts in sections.items():
        out.append(f"[{name}]")
        out.extend(f"{k} = {v}" for k, v in opts.items())
        out.append("")
    return "\n".join(out)


class SwiftServer(ServerBase):
    """All-in-one Swift. Endpoints: `storage_url`, `auth_url`, `s3_endpoint` (start lazily).

    Options: `s3_min_part_size` (s3api `min_segment_size`, default 5 MiB),
    `filter_options` merged into proxy filter sections (e.g.
    `{"slo": {"max_manifest_segments": "10"}, "s3api": {"max_upload_part_num": "10000"}}`),
    `constraints` for swift.conf's `[swift-constraints]`, `bin_dir` to force a Swift install.
    """

    name = "swift"
    user = "test:tester"
    key = "testing"
    account = "AUTH_test"
    region = "us-east-1"

    def __init__(
        self,
        *,
        s3_min_part_size: int = 5 * MiB,
        filter_options: Mapping[str, Mapping[str, str]] | None = None,
        constraints: Mapping[str, str] | None = None,
        bin_dir: str | Path | None = None,
        base_dir: str | Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        super().__init__(base_dir=base_dir, startup_timeout=startup_timeout)
        self.s3_min_part_size = s3_min_part_size
        self.filter_options = {k: dict(v) for k, v in (filter_options or {}).items()}
        self.constraints = dict(constraints or {})
        self._bin_dir_arg = bin_dir
        self.ports: dict[str, int] = {}  # object, container, account, proxy, memcached
        self.last_start_seconds = 0.0

    # -- endpoints --------------------------------------------------------

    @property
    def proxy_port(self) -> int:
        self._ensure_started()
        return self.ports["proxy"]

    @property
    def endpoint(self) -> str:
        """http://127.0.0.1:PORT of the proxy."""
        return f"http://{LOOPBACK}:{self.proxy_port}"

    @property
    def auth_url(self) -> str:
        """tempauth v1 URL: GET with X-Auth-User / X-Auth-Key."""
        return f"{self.endpoint}/auth/v1.0"

    @property
    def storage_url(self) -> str:
        return f"{self.endpoint}/v1/{self.account}"

    @property
    def s3_endpoint(self) -> str:
        """S3 API endpoint (path-style addressing, region us-east-1)."""
        return self.endpoint

    @property
    def access_key(self) -> str:
        return self.user

    @property
    def secret_key(self) -> str:
        return self.key

    @property
    def etc_dir(self) -> Path:
        return self.directory / "etc"

    @property
    def data_dir(self) -> Path:
        """The `devices` folder (objects live under data_dir/sdb1)."""
        return self.directory / "srv"

    def auth_token(self) -> str:
        """A fresh tempauth token for `storage_url` (X-Auth-Token)."""
        req = urllib.request.Request(
            f"{self.endpoint_unchecked}/auth/v1.0",
            headers={"X-Auth-User": self.user, "X-Auth-Key": self.key},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as resp:
            token: str = resp.headers["X-Auth-Token"]
            return token

    def info(self) -> dict[str, Any]:
        return {
            "storage_url": self.storage_url,
            "auth_url": self.auth_url,
            "user": self.user,
            "key": self.key,
            "s3_endpoint": self.s3_endpoint,
            "s3_access_key": self.access_key,
            "s3_secret_key": self.secret_key,
            "region": self.region,
            "ports": self.ports,
            "directory": str(self.directory),
        }

    # -- lifecycle --------------------------------------------------------

    def _prepare(self) -> None:
        bin_dir = find_swift_bin_dir(self._bin_dir_arg)
        self._bin_dir = bin_dir
        self._python = _script_python(bin_dir / "swift-proxy-server")
        self._memcached = shutil.which("memcached") or "/usr/bin/memcached"
        if not os.path.exists(self._memcached):
            raise FileNotFoundError("memcached not found: run scripts/install-test-deps.sh")
        names = ("object", "container", "account", "proxy", "memcached")
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.etc_dir.mkdir(parents=True, exist_ok=True)
        dev = self.data_dir / "sdb1"
        dev.mkdir(parents=True, exist_ok=True)
        _check_xattr(dev)
        self._write_configs()
        res = subprocess.run(
            [
                self._python,
                "-c",
                _RING_SCRIPT,
                str(self.etc_dir),
                json.dumps({k: self.ports[k] for k in KINDS}),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if res.returncode != 0:
            raise ServerStartError(
                f"swift ring build failed ({self._python}):\n{res.stderr[-2000:]}"
            )

    def _launch(self) -> None:
        t0 = time.monotonic()
        taken = [k for k, p in self.ports.items() if port_open(p)]
        if taken:
            raise ServerStartError(f"swift: ports already in use: {taken}")
        mc = [
            self._memcached,
            "-l",
            LOOPBACK,
            "-p",
            str(self.ports["memcached"]),
            "-U",
            "0",
            "-m",
            "64",
        ]
        if os.geteuid() == 0:
            mc += ["-u", "root"]
        self._spawn(mc, "memcached")
        for kind in (*KINDS, "proxy"):
            script = self._bin_dir / f"swift-{kind}-server"
            self._spawn(
                [str(script), str(self.etc_dir / f"{kind}-server.conf"), "-v"], f"{kind}-server"
            )
        deadline = t0 + self.startup_timeout
        for kind in ("memcached", *KINDS):
            wait_for_port(
                self.ports[kind], timeout=max(1.0, deadline - time.monotonic()), procs=self._procs
            )
        wait_for_http(
            f"{self.endpoint_unchecked}/healthcheck",
            timeout=max(1.0, deadline - time.monotonic()),
            ok=lambda s: s == 200,
            procs=self._procs,
        )
        # A token needs tempauth and memcached working.
        try:
            self.auth_token()
        except OSError as e:
            raise ServerStartError(f"swift: tempauth failed: {e}") from e
        self.last_start_seconds = time.monotonic() - t0

    @property
    def endpoint_unchecked(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['proxy']}"

    def _write_configs(self) -> None:
        user = pwd.getpwuid(os.geteuid()).pw_name
        common = {
            "bind_ip": LOOPBACK,
            "workers": "0",
            "user": user,
            "swift_dir": str(self.etc_dir),
            "devices": str(self.data_dir),
            "mount_check": "false",
            "disable_fallocate": "true",
            "log_level": "INFO",
            "bind_timeout": "5",  # fail fast if a port was taken (default: retry 30 s)
        }
        for kind in KINDS:
            conf = {
                "DEFAULT": {
                    **common,
                    "bind_port": str(self.ports[kind]),
                    "log_name": f"{kind}-server",
                },
                "pipeline:main": {"pipeline": f"{kind}-server"},
                f"app:{kind}-server": {"use": f"egg:swift#{kind}"},
            }
            (self.etc_dir / f"{kind}-server.conf").write_text(_render(conf))

        filters: dict[str, dict[str, str]] = {
            "tempauth": {
                "use": "egg:swift#tempauth",
                "reseller_prefix": "AUTH",
                "user_test_tester": f"{self.key} .admin",
                "user_test_reader": "readerkey",
                "token_life": "86400",
            },
            "s3api": {
                "use": "egg:swift#s3api",
                "location": self.region,
                "min_segment_size": str(self.s3_min_part_size),
            },
            "cache": {
                "use": "egg:swift#memcache",
                "memcache_servers": f"{LOOPBACK}:{self.ports['memcached']}",
            },
            "versioned_writes": {
                "use": "egg:swift#versioned_writes",
                "allow_versioned_writes": "true",
            },
        }
        for name in (
            "tempurl",
            "catch_errors",
            "gatekeeper",
            "healthcheck",
            "listing_formats",
            "bulk",
            "copy",
            "slo",
            "dlo",
            "symlink",
        ):
            filters[name] = {"use": f"egg:swift#{name}"}
        filters["proxy-logging"] = {"use": "egg:swift#proxy_logging"}
        for name, opts in self.filter_options.items():
            filters.setdefault(name, {}).update(opts)
        proxy = {
            "DEFAULT": {
                "bind_ip": LOOPBACK,
                "bind_port": str(self.ports["proxy"]),
                "workers": "0",
                "user": user,
                "swift_dir": str(self.etc_dir),
                "log_name": "proxy-server",
                "bind_timeout": "5",
            },
            "pipeline:main": {"pipeline": _PIPELINE},
            "app:proxy-server": {
                "use": "egg:swift#proxy",
                "account_autocreate": "true",
                "allow_account_management": "true",
            },
            **{f"filter:{k}": v for k, v in filters.items()},
        }
        (self.etc_dir / "proxy-server.conf").write_text(_render(proxy))

        swift_conf: dict[str, dict[str, str]] = {
            "swift-hash": {
                "swift_hash_path_prefix": "ugw-prefix",
                "swift_hash_path_suffix": "ugw-suffix",
            },
            "storage-policy:0": {"name": "Policy-0", "default": "yes"},
        }
        if self.constraints:
            swift_conf["swift-constraints"] = dict(self.constraints)
        (self.etc_dir / "swift.conf").write_text(_render(swift_conf))


def _check_xattr(folder: Path) -> None:
    probe = folder / ".xattr-probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.ugw", b"1")
    except OSError as e:
        raise RuntimeError(
            f"swift: {folder} has no user xattrs ({e}); pass base_dir= on a filesystem with them"
        ) from e
    finally:
        probe.unlink()


if __name__ == "__main__":
    serve_main(SwiftServer())
