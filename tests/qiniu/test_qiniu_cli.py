"""``upload-gateway token``: tokens the SDK and the gateway accept."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import qiniu
import yaml

from gateway.access.tokens import KeyPair, TokenVerifier
from tests.qiniu.harness import AK, SK

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "token", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_token_from_config(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"qiniu": {"enabled": True, "keys": [{"access_key": AK, "secret_key": SK}]}})
    )
    done = _run(
        "-c",
        str(config),
        "--bucket",
        "photos",
        "--key",
        "a.jpg",
        "--expires",
        "2h",
        "--policy",
        json.dumps({"returnBody": '{"k":$(key)}', "insertOnly": 1}),
    )
    assert done.returncode == 0, done.stderr
    upload_token = done.stdout.strip()
    verified = TokenVerifier([KeyPair(AK, SK)]).verify(upload_token)
    assert verified.policy.scope == "photos:a.jpg" and verified.policy.insert_only
    assert abs(verified.policy.deadline - (time.time() + 7200)) < 60
    ak, _, policy = qiniu.Auth.up_token_decode(upload_token)
    assert ak == AK and policy["returnBody"] == '{"k":$(key)}'


def test_token_errors() -> None:
    done = _run("--bucket", "b", "--access-key", "x", "--secret-key", "y", "--policy", "[1]")
    assert done.returncode == 2 and "JSON object" in done.stderr
    done = _run("--bucket", "b", "--access-key", "x", "--secret-key", "y")
    assert done.returncode == 0 and done.stdout.startswith("x:")
