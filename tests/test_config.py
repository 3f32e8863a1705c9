"""Configuration: validation messages name the key; env substitution; CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from backends.units import parse_duration, parse_size
from gateway.config import ConfigError, load_config
from testservers.ports import free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[1]


def error_of(data: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(data)
    return str(info.value)


def test_embedded_default() -> None:
    config = load_config({})
    assert config.server.port == 1080 and config.server.host == "127.0.0.1"
    assert config.tus.path == "/files/"
    assert config.backend_config("default").type == "local"
    assert config.state.type == "sqlite" and config.locks.type == "memory"


def test_unknown_keys_are_named() -> None:
    assert "server.prot: unknown key" in error_of({"server": {"prot": 1}})
    assert "surprise: unknown key" in error_of({"surprise": 1})
    message = error_of({"backends": {"default": {"type": "local", "rooot": "/x"}}})
    assert "backends.default.rooot: unknown key" in message


def test_wrong_types_and_values_are_named() -> None:
    assert "server.port" in error_of({"server": {"port": "eighty"}})
    assert "uploads.expire_after" in error_of({"uploads": {"expire_after": "soon"}})
    assert "uploads.memory_budget" in error_of({"uploads": {"memory_budget": "lots"}})
    assert "server.public_url" in error_of({"server": {"public_url": "ftp://x"}})


def test_impossible_combinations_are_named() -> None:
    assert "buckets.default.backend" in error_of({"buckets": {"default": {"backend": "nope"}}})
    assert "tus.bucket" in error_of({"tus": {"bucket": "nope"}})
    message = error_of({"locks": {"type": "redis", "url": "redis://127.0.0.1:1/0"}})
    assert "locks.type redis needs state.type redis" in message
    assert "backends.default.type" in error_of({"backends": {"default": {"type": "ceph-magic"}}})
    assert "qiniu" in error_of({"qiniu": {"enabled": True}})


def test_environment_substitution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_TEST_ROOT", "/srv/uploads")
    config = load_config({"backends": {"default": {"type": "local", "root": "${GW_TEST_ROOT}"}}})
    assert config.backend_config("default").model_dump()["root"] == "/srv/uploads"
    config = load_config({"server": {"public_url": "${GW_UNSET_VAR:-http://fallback}"}})
    assert config.server.public_url == "http://fallback"
    assert "GW_UNSET_VAR" in error_of({"server": {"public_url": "${GW_UNSET_VAR}"}})


def test_units() -> None:
    assert parse_size("8MiB") == 8 * 1024 * 1024
    assert parse_size("5MB") == 5_000_000
    assert parse_size(10) == 10
    assert parse_duration("24h") == 86400
    assert parse_duration("90s") == 90
    for bad in ("-1", "1XB", "", True):
        with pytest.raises(ValueError):
            parse_size(bad)


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )


def test_check_config_accepts_the_example_config() -> None:
    result = cli("check-config", "-c", str(ROOT / "config.yaml"))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_check_config_rejects_with_the_key_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  host: 127.0.0.1\n  prot: 80\n")
    result = cli("check-config", "-c", str(bad))
    assert result.returncode == 2
    assert "server.prot: unknown key" in result.stderr


def test_serve_without_config_runs_the_embedded_default(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", procs=[proc])
        r = requests.post(
            f"http://127.0.0.1:{port}/files/",
            headers={"Tus-Resumable": "1.0.0", "Upload-Length": "0"},
            timeout=10,
        )
        assert r.status_code == 201
        assert (tmp_path / "data" / "state.db").exists()
        assert (tmp_path / "data" / "objects").is_dir()
    finally:
        proc.terminate()
        proc.wait(10)


def test_start_up_failure_is_a_clear_message(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"backends:\n  default: {{type: local, root: {blocker}/sub}}\n"
        f"state: {{type: sqlite, path: {tmp_path}/state.db}}\n"
    )
    result = cli("serve", "-c", str(config), "--port", str(free_port()))
    assert result.returncode != 0
    assert "local backend root" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_commented_backend_example_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commented backends in config.yaml are real, valid configurations."""
    import yaml

    for var in ("S3_ACCESS_KEY", "S3_SECRET_KEY", "SWIFT_KEY", "SWIFT_TEMP_URL_KEY"):
        monkeypatch.setenv(var, "secret")
    text = (ROOT / "config.yaml").read_text()
    lines = text.split("backends:\n", 1)[1].split("\n# Logical buckets", 1)[0].splitlines()
    uncommented = "\n".join(
        line.replace("  # ", "  ", 1) if line.startswith("  # ") else line for line in lines
    )
    backends = yaml.safe_load(uncommented)
    assert set(backends) == {"default", "minio", "swift", "fdfs"}
    config = load_config({"backends": backends})
    for name in backends:
        assert config.backend_config(name).type == backends[name]["type"]
