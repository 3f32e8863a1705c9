"""Configuration of the Swift backend (``backends.<name>`` with ``type: swift``)."""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from backends.base import BackendConfig
from backends.units import parse_duration, parse_size

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
#: Swift's default ``max_file_size``: no single segment may be larger
SWIFT_MAX_OBJECT = 5 * GiB


class UrlMode(enum.Enum):
    #: a temp URL signed with the account's ``Temp-URL-Key``
    TEMPURL = "tempurl"
    #: the object's plain URL (the container must be readable, ``.r:*``)
    PUBLIC = "public"
    #: the gateway's own ``/objects/…`` URL
    GATEWAY = "gateway"


class UrlConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: UrlMode = UrlMode.TEMPURL
    #: lifetime of temp URLs; None = the gateway's ``uploads.url_ttl``
    ttl: float | None = Field(default=None, gt=0)
    #: the storage URL as business services reach it (default: the one from
    #: auth); temp URLs are still signed for the path Swift itself sees
    base_url: str = ""
    digest: Literal["sha256", "sha512", "sha1"] = "sha256"

    @field_validator("ttl", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class SwiftConfig(BackendConfig):
    type: str = "swift"
    #: tempauth: ``http://host:8080/auth/v1.0``; Keystone: ``http://host:5000/v3``
    auth_url: str
    auth_version: Literal[1, 3] = 1
    #: tempauth ``account:user``, or the Keystone user name (or set ``user_id``)
    user: str = ""
    #: tempauth key, or the Keystone password
    key: SecretStr
    # -- Keystone v3 only ---------------------------------------------------
    user_id: str = ""
    user_domain_name: str = "Default"
    user_domain_id: str = ""
    project_name: str = ""
    project_id: str = ""
    project_domain_name: str = "Default"
    project_domain_id: str = ""
    #: which object-store endpoint of the catalog to use
    region_name: str = ""
    interface: Literal["public", "internal", "admin"] = "public"
    # -- layout ----------------------------------------------------------------
    #: use this storage URL instead of the one auth returns
    storage_url: str = ""
    #: finished objects (SLO manifests)
    container: str
    #: segments, sub-manifests and ownership markers; default ``<container>_segments``
    segments_container: str = ""
    #: create missing containers at start-up (else a missing one is an error)
    create_containers: bool = False
    #: a stream's last segment below this is a tail, rewritten together with
    #: the next write (so small client chunks do not become tiny segments).
    #: Keep it at or above the cluster's SLO ``rate_limit_under_size`` (1 MiB by
    #: default): Swift serves smaller segments at 1/s after the first ten
    min_segment_size: int = Field(default=1 * MiB, ge=1)
    #: segments are cut at this size (each is streamed, never buffered whole)
    max_segment_size: int = Field(default=64 * MiB, ge=1, le=SWIFT_MAX_OBJECT)
    #: a stream of at most this many bytes, on its own key, whose bytes all
    #: arrive in one write is one plain object PUT (``plain.py``: held in
    #: memory from the budget until the last byte); 0: always segments
    plain_object_size: int = Field(default=8 * MiB, ge=0, le=SWIFT_MAX_OBJECT)
    #: entries per SLO manifest (lowered to the cluster's
    #: ``max_manifest_segments`` from ``/info``); longer lists are nested
    max_manifest_segments: int = Field(default=1000, ge=2)
    # -- URLs ------------------------------------------------------------------
    #: the account's temp URL key; read from the account when omitted
    temp_url_key: SecretStr | None = None
    #: write ``temp_url_key`` to ``X-Account-Meta-Temp-URL-Key`` at start-up
    set_temp_url_key: bool = False
    url: UrlConfig = UrlConfig()
    # -- behaviour -------------------------------------------------------------
    connect_timeout: float = Field(default=10.0, gt=0)
    #: the longest wait for Swift to answer (or send the next bytes)
    read_timeout: float = Field(default=60.0, gt=0)
    #: a manifest PUT validates every segment it lists, which takes a while
    manifest_timeout: float = Field(default=300.0, gt=0)
    max_connections: int = Field(default=64, ge=1)
    #: parallel requests of one operation (deletes, sub-manifests, markers)
    concurrency: int = Field(default=8, ge=1)
    #: segment PUTs of one write in flight (one being fed, others finishing)
    segments_in_flight: int = Field(default=2, ge=1, le=16)
    #: Retry-After (seconds) suggested to clients while Swift is unavailable
    retry_after: int = Field(default=5, ge=0)

    @field_validator("min_segment_size", "max_segment_size", "plain_object_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size(value)

    @field_validator("connect_timeout", "read_timeout", "manifest_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    def public_urls(self) -> str | None:
        return "url.mode public" if self.url.mode is UrlMode.PUBLIC else None

    @field_validator("auth_url", "storage_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("container", "segments_container")
    @classmethod
    def _container(cls, value: str) -> str:
        if "/" in value or len(value.encode()) > 256:
            raise ValueError("a container name has no '/' and at most 256 bytes")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SwiftConfig:
        if not self.container:
            raise ValueError("container must not be empty")
        if self.min_segment_size > self.max_segment_size:
            raise ValueError("min_segment_size must not exceed max_segment_size")
        if self.segments_container == self.container:
            raise ValueError("segments_container must differ from container")
        if self.set_temp_url_key and self.temp_url_key is None:
            raise ValueError("set_temp_url_key needs temp_url_key")
        if self.auth_version == 1 and not self.user:
            raise ValueError("auth_version 1 (tempauth) needs user ('account:user')")
        if self.auth_version == 3:
            if not (self.user or self.user_id):
                raise ValueError("auth_version 3 (Keystone) needs user or user_id")
            if not (self.project_name or self.project_id):
                raise ValueError("auth_version 3 (Keystone) needs project_name or project_id")
        return self

    @property
    def segments(self) -> str:
        return self.segments_container or f"{self.container}_segments"
