"""docker-compose.yml (Docker cannot run here): its structure, the nginx
settings, and the gateway config it mounts, which must pass check-config."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG_IN_CONTAINER = "/etc/upload-gateway/config.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _gateways(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if n.startswith("gateway")}


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` in a clean environment: the default;
    a required ``${VAR:?message}``: a value as set in .env."""
    value = re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: f"from-env-{m.group(1).lower()}", value)
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def test_no_secret_has_a_default(compose: dict[str, Any]) -> None:
    """Key pairs, passwords and secret keys come from .env; compose refuses to
    start without them."""
    services = compose["services"]
    checked = set()
    for name, service in services.items():
        for var, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|ACCESS_KEY|ROOT_USER", var):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", str(value)), (name, var, value)
                checked.add(var)
    assert {"S3_ACCESS_KEY", "S3_SECRET_KEY", "QINIU_ACCESS_KEY", "MINIO_ROOT_USER"} <= checked


def _mount(service: dict[str, Any], target: str) -> Path:
    for volume in service["volumes"]:
        source, _, rest = str(volume).partition(":")
        if rest.split(":")[0] == target:
            return ROOT / source
    raise AssertionError(f"nothing mounted at {target}")


def _gateway_config() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "deploy" / "gateway.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"minio", "redis", "nginx"} <= services.keys()
    gateways = _gateways(compose)
    assert len(gateways) >= 2
    for name, gw in gateways.items():
        assert gw["build"] == ".", name
        assert (ROOT / "Dockerfile").is_file()
        assert gw["command"][-1] == CONFIG_IN_CONTAINER
        assert _mount(gw, CONFIG_IN_CONTAINER) == ROOT / "deploy" / "gateway.yaml"
        assert {"redis", "minio"} <= set(gw["depends_on"]), name
        assert "/readyz" in " ".join(gw["healthcheck"]["test"])
        assert "ports" not in gw  # only nginx is published
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command  # records survive a Redis restart
    assert services["nginx"]["ports"]
    assert set(gateways) <= set(services["nginx"]["depends_on"])


def test_nginx_streams_and_forwards(compose: dict[str, Any]) -> None:
    conf = _mount(compose["services"]["nginx"], "/etc/nginx/nginx.conf").read_text()
    settings = {
        " ".join(line.split("#")[0].split()).rstrip(";")
        for line in conf.splitlines()
        if line.split("#")[0].strip()
    }
    for required in (
        "proxy_request_buffering off",
        "client_max_body_size 0",
        "proxy_http_version 1.1",
        "proxy_set_header X-Forwarded-Host $http_host",
        "proxy_set_header X-Forwarded-Proto $scheme",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for",
        "proxy_pass http://gateway",
    ):
        assert required in settings, required
    port = _gateway_config()["server"]["port"]
    upstreams = set(re.findall(r"^\s*server\s+([\w.-]+):(\d+)", conf, re.M))
    assert upstreams == {(name, str(port)) for name in _gateways(compose)}


def test_mounted_config_is_shared_state_and_passes_check_config(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    config = _gateway_config()
    assert config["server"]["host"] == "0.0.0.0"
    assert config["server"]["trust_forwarded"] is True
    # access control: uploads need a credential, reads a signed URL
    assert config["buckets"]["default"]["anonymous_upload"] is False
    assert config["buckets"]["default"]["private"] is True
    assert config["state"]["type"] == config["locks"]["type"] == "redis"
    for name, gw in _gateways(compose).items():
        env = {k: _interpolate(str(v)) for k, v in gw["environment"].items()}
        assert urlsplit(env["REDIS_URL"]).hostname in compose["services"]
        backend = config["backends"]["minio"]
        assert urlsplit(backend["endpoint_url"]).hostname in compose["services"]
        result = subprocess.run(
            [sys.executable, "-m", "gateway", "check-config", "-c", "deploy/gateway.yaml"],
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (name, result.stderr)
        assert "OK" in result.stdout


def test_mounted_config_needs_its_secrets() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", "-c", "deploy/gateway.yaml"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "S3_ACCESS_KEY" in result.stderr


def test_dockerfile_serves_the_mounted_config() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^EXPOSE 1080$", text, re.M)
    assert 'ENTRYPOINT ["upload-gateway"]' in text
    assert CONFIG_IN_CONTAINER in text
    assert "[s3,redis]" in text
    assert "USER gateway" in text
