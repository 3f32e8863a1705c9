"""Configuration of the S3 backend (``type: s3`` in ``config.yaml``).

Sizes accept integers or strings such as ``8MiB`` / ``5MB``; durations accept
seconds or ``90s`` / ``15m`` / ``1h`` / ``7d`` (``backends.units``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backends.base import BackendConfig
from backends.units import Duration, Size

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PresignedUrls(_Model):
    """Presigned GET URLs (the store checks signature and expiry)."""

    mode: Literal["presigned"]
    #: lifetime of a URL; 0 = the gateway's ``uploads.url_ttl``
    ttl: Duration = 0.0


class PublicUrls(_Model):
    """``base_url/<key>``: a public bucket or a CDN in front of it."""

    mode: Literal["public"]
    base_url: str


class GatewayUrls(_Model):
    """The gateway's own ``GET /objects/...`` (the store issues no URL)."""

    mode: Literal["gateway"] = "gateway"


UrlConfig = Annotated[PresignedUrls | PublicUrls | GatewayUrls, Field(discriminator="mode")]


class S3Config(BackendConfig):
    type: str = "s3"
    #: None = AWS for ``region``; otherwise MinIO / Ceph RGW / Swift s3api ...
    endpoint_url: str | None = None
    bucket: str
    region: str = "us-east-1"
    #: None = the SDK's default chain (environment, instance profile, ...)
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    #: preferred part size (grown so an object never needs more than max_parts)
    part_size: Size = 8 * MiB
    #: the store's minimum size of every part but the last
    min_part_size: Size = 5 * MiB
    #: the store's part-count limit (AWS 10,000; Swift s3api 1,000); unless
    #: set, lowered at start-up to 1,000 on a store that refuses part 10,000
    max_parts: int = Field(10_000, ge=1)
    #: the largest part the store accepts (and the largest single CopyObject)
    max_part_size: Size = 5 * GiB
    #: 0 = the smaller of 5 TiB and max_parts × max_part_size
    max_object_size: Size = 0
    #: part uploads (or copies) in flight for one stream
    max_concurrency: int = Field(4, ge=1, le=64)
    #: a stream's short tail may be kept as this many small objects before
    #: they are merged into one (each write adds at most one)
    max_tail_pieces: int = Field(32, ge=1, le=1000)
    #: where temporaries live (tails, unassembled streams); see the module docs
    temp_prefix: str = ".upload-gateway/"
    url: UrlConfig = GatewayUrls()
    #: create the bucket at start-up when missing (tests, development)
    create_bucket: bool = False
    #: send Content-MD5 with every upload (the store verifies the bytes) and
    #: check the ETags of forwarded parts; turn off for stores whose ETags are
    #: not MD5s (SSE-KMS)
    content_md5: bool = True
    #: send a part while its bytes arrive when the request announces enough
    #: bytes to fill it (Content-MD5 is then replaced by checking the ETag)
    forward_parts: bool = True
    #: UploadParts opened ahead of the write that will fill them, gateway-wide
    #: (one per stream): when a write ends on a part boundary the next part's
    #: request is sent at once, so the store's fixed cost per part (Swift
    #: s3api: ~15 ms) overlaps the client's next request; 0 = off. Each holds
    #: a connection of the pool, no memory
    preopen_parts: int = Field(8, ge=0)
    #: how long an opened part waits for its write before it is cancelled
    preopen_timeout: Duration = 2.0
    #: the checksum every multipart upload declares, and every part then
    #: carries: buffered parts its CRC32 in a header, forwarded parts in an
    #: aws-chunked trailer (``STREAMING-UNSIGNED-PAYLOAD-TRAILER``), copied
    #: parts the one the store reports; CompleteMultipartUpload lists them.
    #: It spares stores that otherwise compute a full-object checksum at
    #: completion by re-reading every byte (moto: seconds for 512 MiB), and
    #: the store checks each part. ``none``: Content-MD5 instead (every S3
    #: store verifies it). ``auto`` (default): CRC32 where a start-up probe
    #: finds the store checks it in every form, else Content-MD5; ``CRC32`` on
    #: a store that does not check it stops start-up (``backends/s3/integrity.py``).
    #: Streams already open keep theirs
    multipart_checksum: Literal["auto", "CRC32", "none"] = "auto"
    #: SigV4-sign payloads (hashes every byte in the event loop; TLS plus
    #: Content-MD5 already protect the bytes, so it is off by default)
    payload_signing: bool = False
    connect_timeout: Duration = 5.0
    read_timeout: Duration = 60.0
    #: attempts per request, including the first
    max_attempts: int = Field(3, ge=1, le=10)
    max_pool_connections: int = Field(32, ge=1)

    def public_urls(self) -> str | None:
        return "url.mode public" if self.url.mode == "public" else None

    @model_validator(mode="after")
    def _consistent(self) -> S3Config:
        if self.min_part_size > self.part_size:
            raise ValueError("part_size must be at least min_part_size")
        if self.part_size > self.max_part_size:
            raise ValueError("part_size must not exceed max_part_size")
        if not self.temp_prefix or self.temp_prefix.startswith("/"):
            raise ValueError("temp_prefix must be non-empty and not start with '/'")
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError("access_key and secret_key go together")
        if self.preopen_parts >= self.max_pool_connections:
            raise ValueError("preopen_parts must stay below max_pool_connections")
        if self.max_object_size > self.max_parts * self.max_part_size:
            raise ValueError("max_object_size exceeds max_parts × max_part_size")
        return self

    @property
    def object_limit(self) -> int:
        return self.max_object_size or min(5 * TiB, self.max_parts * self.max_part_size)

    def part_size_for(self, length: int | None) -> int:
        """The part size of a stream: preferred, grown to fit max_parts."""
        size = self.part_size
        if length is not None and length > size * self.max_parts:
            size = -(-length // self.max_parts)
        return min(size, self.max_part_size)
