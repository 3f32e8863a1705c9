"""Typed, validated configuration (``config.yaml``).

Unknown keys, wrong types and impossible combinations are rejected at
start-up with a message naming the key. ``${ENV_VAR}`` (or
``${ENV_VAR:-default}``) anywhere in a string value is replaced from the
environment before validation.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from backends.base import BackendConfig
from backends.errors import BackendConfigError
from backends.registry import backend_class
from backends.units import parse_duration, parse_size
from gateway.content_types import DEFAULT_INLINE, content_type


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _size(value: Any) -> int:
    return parse_size(value)


def _duration(value: Any) -> float:
    return parse_duration(value)


class ServerConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(1080, ge=0, le=65535)
    #: what clients and business services see; empty = derived per request
    public_url: str = ""
    #: bytes; 0 = unlimited
    max_upload_size: int = 0
    #: honour X-Forwarded-* / Forwarded: only behind a proxy that sets them,
    #: else any client chooses the host of Location and object URLs
    trust_forwarded: bool = False
    cors_allow_origin: str = "*"
    #: content types the gateway serves inline from its own origin (``type/*``
    #: never matches HTML, XML or SVG); every other type is an attachment
    inline_types: tuple[str, ...] = DEFAULT_INLINE
    #: seconds from a connection's start (or the end of its last response)
    #: to the end of the next request's headers; idle connections close then
    header_timeout: float = Field(60.0, gt=0)
    #: seconds a request body may go without a byte before it ends with 408
    body_timeout: float = Field(60.0, gt=0)

    _v_size = field_validator("max_upload_size", mode="before")(_size)
    _v_timeouts = field_validator("header_timeout", "body_timeout", mode="before")(_duration)

    @field_validator("inline_types")
    @classmethod
    def _inline(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for entry in v:
            if not (content_type(entry) or content_type(entry.replace("/*", "/x"))):
                raise ValueError(f"{entry!r} is not a type/subtype or type/*")
        return v

    @field_validator("public_url")
    @classmethod
    def _strip(cls, v: str) -> str:
        if v and not re.match(r"^https?://", v):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class BucketConfig(_Model):
    backend: str
    prefix: str = ""
    #: objects served only with signed URLs (Qiniu private-download form)
    private: bool = False
    #: tus uploads without a credential (the upload URL is the only secret)
    anonymous_upload: bool = True
    #: instant upload (a declared SHA-256 matching a finished object completes
    #: the upload at creation): among one owner's objects, the whole bucket's
    #: (credentialed uploads), or off
    instant_upload: Literal["owner", "bucket", "off"] = "owner"
    #: ``sha256``: every object's SHA-256 is computed as its bytes pass and
    #: recorded (README "Whole-file digests"); ``off``: only uploads that
    #: declare a ``Repr-Digest`` are hashed (and verified)
    digest: Literal["sha256", "off"] = "sha256"

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if v.startswith("/"):
            raise ValueError("must not start with '/'")
        return v


class TusConfig(_Model):
    enabled: bool = True
    path: str = "/files/"
    bucket: str = "default"

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with '/'")
        return v if v.endswith("/") else v + "/"


class QiniuKey(_Model):
    access_key: str = Field(min_length=1)
    secret_key: str = Field(min_length=1)


class QiniuConfig(_Model):
    enabled: bool = False
    keys: list[QiniuKey] = []
    #: how long a v1 ctx / v2 uploadId stays valid (at most uploads.expire_after)
    context_ttl: float = 7 * 86400
    #: signs v1 ctx tokens; empty = derived from the secret keys (every
    #: instance with the same keys derives the same secret)
    ctx_secret: str = ""
    #: where a form file is stored when it arrives before its token (which
    #: names the bucket); empty = the first bucket
    staging_bucket: str = ""
    #: per callbackUrl attempt
    callback_timeout: float = 10.0
    #: a form file up to this size whose token came first is held in memory
    #: (from server.memory_budget) until checked, then written once on its
    #: key; larger ones are streamed into the store and moved there
    form_buffer: int = 8 * 1024 * 1024

    _v_ttl = field_validator("context_ttl", "callback_timeout", mode="before")(_duration)
    _v_buffer = field_validator("form_buffer", mode="before")(_size)

    @model_validator(mode="after")
    def _keys_when_enabled(self) -> QiniuConfig:
        if self.enabled and not self.keys:
            raise ValueError("qiniu.enabled needs at least one entry in qiniu.keys")
        return self


class StateConfig(_Model):
    type: Literal["sqlite", "redis"] = "sqlite"
    path: str = "./data/state.db"
    url: str = ""

    @model_validator(mode="after")
    def _url_for_redis(self) -> StateConfig:
        if self.type == "redis" and not self.url:
            raise ValueError("state.type redis needs state.url")
        return self


class LocksConfig(_Model):
    type: Literal["memory", "redis"] = "memory"
    url: str = ""
    #: how long a request waits for another request on the same upload
    acquire_timeout: float = 20.0
    #: lease of a distributed lock, renewed every lease/4 while held: an
    #: instance that died holds its uploads at most this long
    lease: float = 3.0

    _v_t = field_validator("acquire_timeout", "lease", mode="before")(_duration)

    @model_validator(mode="after")
    def _url_for_redis(self) -> LocksConfig:
        if self.type == "redis" and not self.url:
            raise ValueError("locks.type redis needs locks.url")
        return self


class UploadsConfig(_Model):
    #: unfinished uploads expire this long after their last write
    expire_after: float = 86400.0
    #: how often the sweeper looks for expired uploads
    sweep_interval: float = 60.0
    #: how long a terminated or expired id keeps answering 410 before 404
    tombstone_ttl: float = 86400.0
    #: global budget for part buffers held in memory
    memory_budget: int = 256 * 1024 * 1024
    #: how long a new request waits for memory when the budget is in use
    #: before it is refused with 503 + Retry-After
    memory_budget_wait: float = 3.0
    #: how long a request under way (it got memory before) waits for more,
    #: ahead of new requests, before it too is refused with 503 + Retry-After
    memory_budget_wait_under_way: float = 30.0
    #: how long object URLs issued by the store stay valid
    url_ttl: float = 3600.0

    _v_d = field_validator(
        "expire_after",
        "sweep_interval",
        "tombstone_ttl",
        "url_ttl",
        "memory_budget_wait",
        "memory_budget_wait_under_way",
        mode="before",
    )(_duration)
    _v_s = field_validator("memory_budget", mode="before")(_size)


HookEvent = Literal["pre-create", "pre-finish", "post-create", "post-finish", "post-terminate"]


class HookConfig(_Model):
    url: str
    #: ``pre-*`` hooks are called synchronously and decide; ``post-*`` are notified
    events: list[HookEvent] = ["post-finish"]
    timeout: float = 10.0
    #: ``post-*`` deliveries only; a ``pre-*`` hook that fails answers 503
    retries: int = 5
    #: signs every call: ``Hook-Signature: sha256=<hex HMAC-SHA256 of the body>``
    secret: str = ""

    _v_t = field_validator("timeout", mode="before")(_duration)


JwtAlgorithm = Literal[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"
]


class JwtConfig(_Model):
    """``Authorization: Bearer <jwt>``, claims mapped onto a put policy."""

    algorithms: list[JwtAlgorithm] = ["HS256"]
    #: HS* algorithms
    secret: str = ""
    #: RS*/ES*: a PEM public key file, or a JWKS file (keys picked by ``kid``)
    public_key_file: str = ""
    jwks_file: str = ""
    audience: str = ""
    issuer: str = ""
    #: seconds of clock skew allowed on ``exp``/``nbf``
    leeway: float = 0.0

    @model_validator(mode="after")
    def _keys(self) -> JwtConfig:
        if not self.algorithms:
            raise ValueError("access.jwt.algorithms must not be empty")
        symmetric = {a for a in self.algorithms if a.startswith("HS")}
        if symmetric and not self.secret:
            raise ValueError("access.jwt: HS* algorithms need access.jwt.secret")
        if symmetric and len(symmetric) != len(self.algorithms):
            raise ValueError("access.jwt: do not mix HS* with RS*/ES* algorithms")
        if not symmetric and not (self.public_key_file or self.jwks_file):
            raise ValueError("access.jwt: RS*/ES* algorithms need public_key_file or jwks_file")
        return self


class UiConfig(_Model):
    #: the upload page at /ui/ (GET / redirects there)
    enabled: bool = True
    #: the ops view at /ui/ops is off unless this is set; send it as
    #: ``Authorization: Bearer <token>`` (the page asks for it)
    ops_token: str = ""
    #: how many recent finishes the ops view keeps
    ops_recent: int = Field(20, ge=1, le=200)

    @field_validator("ops_token")
    @classmethod
    def _long_enough(cls, v: str) -> str:
        if v and len(v) < 16:
            raise ValueError("must be at least 16 characters (or empty: the ops view off)")
        return v


class AccessConfig(_Model):
    jwt: JwtConfig | None = None


class MetricsConfig(_Model):
    enabled: bool = True
    #: serve ``/metrics`` on its own listener (``port`` > 0) instead of the main one
    host: str = ""  # default: server.host
    port: int = Field(0, ge=0, le=65535)
    #: scrapers must send ``Authorization: Bearer <token>``; no default:
    #: without it /metrics is open to whoever reaches its port
    token: str = ""


class GatewayConfig(_Model):
    server: ServerConfig = ServerConfig()
    backends: dict[str, dict[str, Any]] = {"default": {"type": "local", "root": "./data"}}
    buckets: dict[str, BucketConfig] = {"default": BucketConfig(backend="default")}
    tus: TusConfig = TusConfig()
    qiniu: QiniuConfig = QiniuConfig()
    state: StateConfig = StateConfig()
    locks: LocksConfig = LocksConfig()
    uploads: UploadsConfig = UploadsConfig()
    hooks: list[HookConfig] = []
    ui: UiConfig = UiConfig()
    access: AccessConfig = AccessConfig()
    metrics: MetricsConfig = MetricsConfig()

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        private = [name for name, b in self.buckets.items() if b.private]
        if private and not self.qiniu.keys:
            raise ValueError(
                f"buckets.{private[0]}.private: signed URLs need a key pair in qiniu.keys"
            )
        for name, bucket in self.buckets.items():
            if bucket.backend not in self.backends:
                raise ValueError(f"buckets.{name}.backend: no backend named {bucket.backend!r}")
        if self.tus.enabled and self.tus.bucket not in self.buckets:
            raise ValueError(f"tus.bucket: no bucket named {self.tus.bucket!r}")
        staging = self.qiniu.staging_bucket
        if staging and staging not in self.buckets:
            raise ValueError(f"qiniu.staging_bucket: no bucket named {staging!r}")
        if self.metrics.enabled and self.metrics.port and self.metrics.port == self.server.port:
            raise ValueError("metrics.port: the main port already serves /metrics; use another")
        if self.state.type == "sqlite" and self.locks.type == "redis":
            raise ValueError("locks.type redis needs state.type redis (shared state)")
        if self.state.type == "redis" and self.locks.type == "memory":
            raise ValueError(
                "state.type redis with locks.type memory is unsafe across instances; "
                "use locks.type redis"
            )
        return self

    def backend_config(self, name: str) -> BackendConfig:
        """The validated, typed config of backend ``name``."""
        raw = self.backends[name]
        cls = backend_class(str(raw.get("type", "")))
        return cls.config_model.model_validate(raw)


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

#: keys whose values are secrets: never a default, never empty from ``${VAR}``
SECRET_KEYS = frozenset(
    {"secret_key", "secret", "key", "password", "temp_url_key", "ctx_secret", "access_key"}
)


def _substitute(value: Any, where: str) -> Any:
    if isinstance(value, str):
        secret = where.rsplit(".", 1)[-1] in SECRET_KEYS

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if secret and default:
                raise ConfigError(f"{where}: a secret takes no default (${{{name}:-...}})")
            if os.environ.get(name):
                return os.environ[name]
            if secret:
                raise ConfigError(f"{where}: environment variable {name} is not set or empty")
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{where}: environment variable {name} is not set")

        return _ENV.sub(repl, value)
    if isinstance(value, dict):
        return {k: _substitute(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _describe(exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        key = f"{prefix}{loc}" if loc else prefix.rstrip(".")
        # cross-field checks name their own keys in the message
        lines.append(f"{key}: {msg}" if key else msg)
    return "; ".join(lines)


def load_config(data: dict[str, Any] | None) -> GatewayConfig:
    """Validate a config mapping (already parsed from YAML)."""
    data = _substitute(data or {}, "")
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping")
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    for name in config.backends:
        try:
            config.backend_config(name)
        except BackendConfigError as exc:
            raise ConfigError(f"backends.{name}.type: {exc}") from exc
        except ValidationError as exc:
            raise ConfigError(_describe(exc, f"backends.{name}.")) from exc
    for name, bucket in config.buckets.items():
        public = config.backend_config(bucket.backend).public_urls() if bucket.private else None
        if public:
            raise ConfigError(
                f"buckets.{name}.private: backend {bucket.backend!r} hands out URLs anyone "
                f"can read ({public}); use signed URLs (s3 presigned, swift tempurl) or the "
                "gateway's (url mode gateway; fastdfs without http_base_url)"
            )
    return config


def load_config_file(path: str | Path | None) -> GatewayConfig:
    """Load ``path``, or the embedded default when None."""
    if path is None:
        return load_config({})
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    return load_config(data)
