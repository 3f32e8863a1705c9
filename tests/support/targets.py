"""Backends under test. Every protocol suite and the backend conformance suite
run once per target here (``pytest -k local`` etc. to pick one).

To add a backend: write a ``Target`` subclass whose ``backend_config`` returns
the ``backends.<name>`` mapping for config.yaml (starting its server lazily,
once per session, through ``testservers/``), and register it in ``TARGETS``.
``GATEWAY_TEST_BACKENDS=local,s3-moto`` limits a run to some targets.

The field stores (``FIELD_TARGETS``: Swift 2.30's s3api and Ceph RGW, the S3
stores operations run today) take longer to start and run only when
``GATEWAY_TEST_BACKENDS`` names them; without it they run the smoke subset of
``tests/s3/test_field_stores.py`` (``smoke_targets()``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testservers.ports import ServerStartError


class Target:
    name = "?"

    def backend_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def leftovers(self) -> list[str]:
        """Temporary pieces still in the store (multipart uploads, tails,
        segments); an empty list after every test that cleaned up."""
        return []

    def stop(self) -> None:
        """Stop servers this target started."""


class LocalTarget(Target):
    name = "local"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gw-local-"))

    def backend_config(self) -> dict[str, Any]:
        return {"type": "local", "root": str(self.root / "data")}

    def leftovers(self) -> list[str]:
        tmp = self.root / "data" / "objects"
        return [p.name for p in tmp.glob(".tmp-*")] if tmp.exists() else []


class FastDFSTarget(Target):
    """The FastDFS test server (tracker + storage, in-process thread)."""

    name = "fastdfs"

    def __init__(self) -> None:
        from testservers.fastdfs_server import FastDFSServer

        self.server = FastDFSServer().start()

    def backend_config(self) -> dict[str, Any]:
        return {"type": "fastdfs", "trackers": [self.server.tracker_addr]}

    def leftovers(self) -> list[str]:
        # An assembly's temporary is an appender file, indistinguishable from a
        # live stream (which other suites leave behind on purpose); tests/fastdfs
        # checks server.files(appender=True) around its own operations instead.
        return []

    def stop(self) -> None:
        self.server.stop()


class S3Target(Target):
    """An S3 server from ``testservers/``. Every ``backend_config()`` names a
    fresh bucket (created when a backend starts on it), so ``leftovers()`` —
    the incomplete multipart uploads and temporaries of the newest bucket
    that exists — never sees other suites' unfinished uploads."""

    #: what the backend's start-up probe finds (``backends/s3/integrity.py``):
    #: the part-count limit it settles on, what protects the bytes
    #: ("CRC32", "Content-MD5", or "nothing" the store checks), and whether
    #: the store takes every form of CRC32 (checked or not)
    max_parts = 10_000
    integrity = "CRC32"
    crc32_usable = True
    #: the store makes an object from some of an upload's parts (probed): Qiniu
    #: v2 parts then go straight into the object's upload
    partial_complete = True
    #: the store honours If-None-Match: * on CompleteMultipartUpload (probed):
    #: Qiniu form files for a key that must be free go straight to it
    complete_if_absent = True
    #: a part's ETag is the MD5 of its bytes (probed): a Qiniu v2 part that
    #: goes alone into the object's upload is checked by it, not hashed
    part_etag_md5 = True
    temp_prefix = ".upload-gateway/"

    def __init__(self) -> None:
        self.server = self._start()
        self.buckets: list[str] = []

    def _start(self) -> Any:
        raise NotImplementedError

    @property
    def endpoint(self) -> str:
        return str(self.server.endpoint_url)

    def backend_config(self) -> dict[str, Any]:
        self.buckets.append(f"gw-test-{os.getpid()}-{len(self.buckets) + 1}")
        return {
            "type": "s3",
            "endpoint_url": self.endpoint,
            "bucket": self.buckets[-1],
            "access_key": self.server.access_key,
            "secret_key": self.server.secret_key,
            "addressing_style": "path",
            "temp_prefix": self.temp_prefix,
            "create_bucket": True,
        }

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.server.access_key,
            aws_secret_access_key=self.server.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def leftovers(self, bucket: str | None = None) -> list[str]:
        s3 = self.client()
        existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        if bucket is None:
            bucket = next((b for b in reversed(self.buckets) if b in existing), None)
        if bucket not in existing:
            return []
        found = [
            f"multipart upload {u['Key']}"
            for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        ]
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=self.temp_prefix)
        found += [f"temporary {o['Key']}" for o in listing.get("Contents", [])]
        return found

    def stop(self) -> None:
        self.server.close()


class MotoTarget(S3Target):
    """moto: takes CRC32s and Content-MD5s but checks neither."""

    name = "s3-moto"
    integrity = "nothing"

    def _start(self) -> Any:
        from testservers.moto import MotoServer

        return MotoServer().start()


class SwiftS3Target(S3Target):
    """Swift's s3api: checks signatures and presigned-URL expiry; 1,000 parts."""

    name = "s3-swift"
    max_parts = 1000

    def _start(self) -> Any:
        from testservers.swift import SwiftServer

        # synchronous SLO deletes (no object-expirer runs here), so that
        # deleted objects leave no segments behind
        return SwiftServer(filter_options={"slo": {"allow_async_delete": "false"}}).start()

    @property
    def endpoint(self) -> str:
        return str(self.server.s3_endpoint)


class Swift230S3Target(SwiftS3Target):
    """Swift 2.30's s3api, Debian 12's ``swift`` packages (/usr/bin): no
    flexible checksums (CompleteMultipartUpload with them is MalformedXML)."""

    name = "s3-swift230"
    integrity = "Content-MD5"
    crc32_usable = False
    complete_if_absent = False  # InvalidRequest on a taken key

    def _start(self) -> Any:
        from testservers.swift import SwiftServer

        debian = Path("/usr/bin/swift-proxy-server")
        if not debian.is_file():
            raise ServerStartError(
                "s3-swift230 needs Debian's swift packages (/usr/bin/swift-proxy-server): "
                "run scripts/install-test-deps.sh"
            )
        return SwiftServer(
            bin_dir=debian.parent, filter_options={"slo": {"allow_async_delete": "false"}}
        ).start()


class CephTarget(S3Target):
    """Ceph RGW 16 (Debian 12's radosgw): one mon, one memstore OSD, auth none."""

    name = "s3-ceph"
    integrity = "Content-MD5"
    crc32_usable = False
    partial_complete = False  # CompleteMultipartUpload must list every part
    complete_if_absent = False  # ignored: the object is replaced

    def _start(self) -> Any:
        from testservers.ceph import CephServer

        return CephServer().start()


class SwiftTarget(Target):
    """An all-in-one Swift (testservers/swift.py). Every ``backend_config()``
    gets fresh containers, and ``leftovers()`` looks at the latest pair: pieces
    no object references (live streams of earlier gateway suites are not counted)."""

    name = "swift"

    def __init__(self) -> None:
        from tests.swift.account import SwiftAccount
        from testservers.swift import SwiftServer

        self.server = SwiftServer()
        self.account = SwiftAccount(self.server)
        self.issued = 0
        self.containers = ("", "")

    def backend_config(self) -> dict[str, Any]:
        self.issued += 1
        container = f"uploads-{self.issued}"
        self.containers = (container, f"{container}_segments")
        return {
            "type": "swift",
            "auth_url": self.server.auth_url,
            "user": self.server.user,
            "key": self.server.key,
            "container": container,
            "create_containers": True,
            "max_segment_size": "4MiB",
            "temp_url_key": "gateway-tests",
            "set_temp_url_key": True,
        }

    def leftovers(self) -> list[str]:
        return self.account.orphans(*self.containers) if self.issued else []

    def stop(self) -> None:
        self.server.close()


#: name → factory; factories are called at most once per session
TARGETS: dict[str, Callable[[], Target]] = {
    "local": LocalTarget,
    "fastdfs": FastDFSTarget,
    "s3-moto": MotoTarget,
    "s3-swift": SwiftS3Target,
    "swift": SwiftTarget,
    "s3-swift230": Swift230S3Target,
    "s3-ceph": CephTarget,
}
#: started only when GATEWAY_TEST_BACKENDS names them (else: their smoke subset)
FIELD_TARGETS = ("s3-swift230", "s3-ceph")


def selected_targets() -> list[str]:
    wanted = os.environ.get("GATEWAY_TEST_BACKENDS")
    if not wanted:
        return [n for n in TARGETS if n not in FIELD_TARGETS]
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise ValueError(
            f"unknown GATEWAY_TEST_BACKENDS entries: {unknown}; known: {list(TARGETS)}"
        )
    return names


def smoke_targets() -> list[str]:
    """The field stores that run the smoke subset: both by default, else those named."""
    if not os.environ.get("GATEWAY_TEST_BACKENDS"):
        return list(FIELD_TARGETS)
    return [n for n in selected_targets() if n in FIELD_TARGETS]
