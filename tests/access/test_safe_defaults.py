"""Safe defaults: no secret has a default, Qiniu needs its keys, private
buckets need a key pair, JWT settings are checked; a gateway reachable
beyond loopback with anonymous uploads says so loudly; ``upload-gateway
token`` mints credentials the gateway accepts, for tus and Qiniu, as an
upload token or a JWT."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.config import ConfigError, load_config
from tests.access.support import access_config, tus_create
from tests.support.targets import LocalTarget
from testservers.gateway import GatewayProcess

ROOT = Path(__file__).resolve().parents[2]


def _error(data: dict[str, Any], env: dict[str, str] | None = None) -> str:
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        with pytest.raises(ConfigError) as info:
            load_config(data)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return str(info.value)


def test_secrets_take_no_default_and_no_empty_value() -> None:
    keys = {"enabled": True, "keys": [{"access_key": "ak", "secret_key": "${QSK:-demo-sk}"}]}
    assert "takes no default" in _error({"qiniu": keys})
    keys = {"enabled": True, "keys": [{"access_key": "ak", "secret_key": "${QSK_UNSET_X}"}]}
    assert "QSK_UNSET_X" in _error({"qiniu": keys})
    assert "not set or empty" in _error({"qiniu": keys}, {"QSK_UNSET_X": ""})
    keys = {"enabled": True, "keys": [{"access_key": "ak", "secret_key": ""}]}
    assert "secret_key" in _error({"qiniu": keys})
    assert "qiniu.keys" in _error({"qiniu": {"enabled": True}})
    swift = {"type": "swift", "auth_url": "http://x/auth/v1.0", "user": "u", "key": "${K:-pw}"}
    assert "takes no default" in _error({"backends": {"default": swift}})
    # a non-secret may keep its default
    load_config({"server": {"public_url": "${PUBLIC_URL_UNSET_X:-}"}})


def test_private_buckets_and_jwt_need_their_keys() -> None:
    private = {"buckets": {"default": {"backend": "default", "private": True}}}
    assert "qiniu.keys" in _error(private)
    assert "secret" in _error({"access": {"jwt": {"algorithms": ["HS256"]}}})
    assert "public_key_file or jwks_file" in _error({"access": {"jwt": {"algorithms": ["RS256"]}}})


@pytest.mark.parametrize(
    ("backend", "what"),
    [
        ({"type": "s3", "bucket": "b", "url": {"mode": "public", "base_url": "https://cdn.x"}},
         "url.mode public"),
        ({"type": "swift", "auth_url": "http://x/auth/v1.0", "user": "u", "key": "k", "container": "c",
          "url": {"mode": "public"}}, "url.mode public"),
        ({"type": "fastdfs", "trackers": ["127.0.0.1:22122"], "http_base_url": "http://x"},
         "http_base_url"),
    ],
)  # fmt: skip
def test_private_bucket_refuses_a_store_with_public_urls(
    backend: dict[str, Any], what: str
) -> None:
    """A private bucket's objects must not be handed out under URLs anyone
    can read: a store whose URLs are public is a configuration error there."""
    keys = {"keys": [{"access_key": "ak", "secret_key": "sk"}]}
    data = {
        "backends": {"default": backend},
        "buckets": {"default": {"backend": "default", "private": True}},
        "qiniu": keys,
    }
    error = _error(data)
    assert "buckets.default.private" in error and what in error
    data["buckets"] = {"default": {"backend": "default"}}
    load_config(data)  # a public bucket may
    signed = dict(backend, url={"mode": "presigned"}) if backend["type"] == "s3" else None
    if signed is not None:
        load_config({**data, "backends": {"default": signed}, "buckets": {
            "default": {"backend": "default", "private": True}}})  # fmt: skip


def test_trust_forwarded_is_off_by_default() -> None:
    assert load_config({}).server.trust_forwarded is False
    example = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert example["server"]["trust_forwarded"] is False
    deploy = yaml.safe_load((ROOT / "deploy" / "gateway.yaml").read_text())
    assert deploy["server"]["trust_forwarded"] is True  # behind nginx, on purpose
    assert deploy["buckets"]["default"]["anonymous_upload"] is False


def test_open_gateway_beyond_loopback_warns(tmp_path: Path) -> None:
    config = {
        "backends": {"default": {"type": "local", "root": str(tmp_path / "data")}},
        "state": {"type": "sqlite", "path": str(tmp_path / "state.db")},
        "hooks": [{"url": "http://127.0.0.1:9/hook", "events": ["post-finish"]}],
    }
    gw = GatewayProcess(config, workdir=tmp_path)
    gw.extra_args = ("--host", "0.0.0.0")
    with gw:
        requests.get(f"http://127.0.0.1:{gw.port}/healthz", timeout=10)
    log = gw.log_path.read_text()
    assert "SECURITY" in log and "anonymous" in log
    assert "no secret" in log
    # the start-up summary does not claim forwarded headers are honoured
    assert "Forwarded headers ignored: trust_forwarded false" in log


def _cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_token_command_mints_what_the_gateway_accepts(tmp_path: Path) -> None:
    target = LocalTarget()
    config = access_config(target)
    with GatewayProcess(config) as gw:
        path = gw.workdir / "config.yaml"
        for extra in ((), ("--jwt",)):
            token = _cli(
                "token", "-c", str(path), "--bucket", "default", "--end-user", "dan", *extra
            )
            r = tus_create(gw.files_url, 3, token)
            assert r.status_code == 201, (extra, r.text)
            if extra:
                claims = jwt.decode(token, options={"verify_signature": False})
                assert claims["sub"] == "dan" and claims["policy"]["scope"] == "default"
                assert claims["exp"] > time.time()
        limited = _cli(
            "token", "-c", str(path), "--bucket", "default", "--policy", '{"fsizeLimit": 2}'
        )
        assert tus_create(gw.files_url, 3, limited).status_code == 413


def _keys(kind: str) -> tuple[Any, str]:
    private: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, pem.decode()


def _hs256_by_hand(claims: dict[str, Any], secret: str) -> str:
    """PyJWT refuses to make this token; an attacker does not."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    mac = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(mac)}"


@pytest.mark.parametrize("kind", ["RS256", "ES256"])
def test_jwt_with_a_public_key_and_a_jwks_file(tmp_path: Path, kind: str) -> None:
    private, pem = _keys(kind)
    (tmp_path / "key.pem").write_text(pem)
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[kind].to_jwk(private.public_key()))
    jwk.update(kid="k1", alg=kind, use="sig")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    claims = {"exp": int(time.time()) + 600, "sub": "erin", "policy": {"scope": "default"}}
    good = jwt.encode(claims, private, algorithm=kind, headers={"kid": "k1"})
    stranger, _ = _keys(kind)
    forged = jwt.encode(claims, stranger, algorithm=kind, headers={"kid": "k1"})
    hs = _hs256_by_hand(claims, pem)  # algorithm confusion: the public key as an HMAC secret
    target = LocalTarget()
    for source in (
        {"public_key_file": str(tmp_path / "key.pem")},
        {"jwks_file": str(tmp_path / "jwks.json")},
    ):
        config = access_config(target, access={"jwt": {"algorithms": [kind], **source}})
        with GatewayProcess(config) as gw:
            assert tus_create(gw.files_url, 3, good).status_code == 201
            for bad in (forged, hs):
                assert tus_create(gw.files_url, 3, bad).status_code == 401
