"""The bare v2 relay (``bench/sdk_pace.py``) takes the official SDK's upload
into the store: the object is the file's bytes. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.envs import MotoEnv, s3_client

MiB = 1 << 20


def test_the_sdk_uploads_through_the_relay_into_the_store(tmp_path: Path) -> None:
    env = MotoEnv(tmp_path / "moto")
    env.start()
    try:
        endpoint, ak, sk = env._endpoint()
        argv = [sys.executable, "-m", "bench.sdk_pace", "once", "--endpoint", endpoint,
                "--bucket", env.bucket, "--ak", ak, "--sk", sk, "--part-size", str(8 * MiB),
                "--size", str(20 * MiB), "--count", "2"]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert (result["ok"], result["errors"]) == (2, 0)
        s3 = s3_client(endpoint, ak, sk)
        objects = s3.list_objects_v2(Bucket=env.bucket)["Contents"]
        assert len(objects) == 2
        for listed in objects:  # three parts: 8 + 8 + 4 MiB, each an UploadPart
            got = s3.get_object(Bucket=env.bucket, Key=listed["Key"])
            assert got["ContentLength"] == 20 * MiB
            assert got["ETag"].strip('"').endswith("-3")
            body = got["Body"].read()
            block = body[: 8 * MiB]  # bench.load repeats one random 8 MiB block
            assert body == (block * 3)[: 20 * MiB]
            assert len(set(block[:4096])) > 200  # random bytes, not zeros
    finally:
        env.stop()
