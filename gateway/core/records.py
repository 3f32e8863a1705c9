"""The upload record: everything the state store keeps about one upload."""

from __future__ import annotations

import enum
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from backends.base import StreamInfo
from gateway.core.upgrades import upgrade


class Status(enum.StrEnum):
    ACTIVE = "active"  # receiving bytes (or, for an assembly, waiting for its parts)
    COMPLETE = "complete"  # a stream with all its bytes, sealed, not an object of its own
    FINISHED = "finished"  # an object exists at ``key``
    TERMINATED = "terminated"
    EXPIRED = "expired"


class Kind(enum.StrEnum):
    UPLOAD = "upload"  # one stream that becomes the object at ``key`` when complete
    PART = "part"  # one stream that waits to be assembled (tus partial, Qiniu block/part)
    ASSEMBLY = "assembly"  # an object made of finished parts (tus final, mkfile)


def new_upload_id() -> str:
    """128 random bits, URL-safe, no padding."""
    return secrets.token_hex(16)


@dataclass
class UploadRecord:
    id: str
    protocol: str
    kind: Kind
    bucket: str
    #: the object key in the bucket (without the bucket's prefix); None until known
    key: str | None
    length: int | None
    offset: int = 0
    status: Status = Status.ACTIVE
    #: user metadata (tus Upload-Metadata, Qiniu x-qn-meta-*)
    metadata: dict[str, str] = field(default_factory=dict)
    #: tus "partial"/"final"; ordered part ids of an assembly
    concat: str | None = None
    parts: list[str] = field(default_factory=list)
    created_at: float = 0.0
    updated_at: float = 0.0
    expires_at: float | None = None
    #: backend-private state; never shown to clients
    backend_state: dict[str, Any] = field(default_factory=dict)
    #: bookkeeping beside the stream: the protocol's own (e.g. Qiniu SHA-1s), the
    #: core's under ``core:*`` keys (``object_meta``, ``multipart``), and the
    #: ``hash`` / ``url`` a protocol gives the object, which webhooks carry
    extra: dict[str, Any] = field(default_factory=dict)
    #: bumped on every save; the store's compare-and-set checks it
    version: int = 0
    #: the gateway instance that last created or saved it (``host:port``)
    instance: str = ""

    @property
    def deferred(self) -> bool:
        return self.length is None

    @property
    def is_complete(self) -> bool:
        return self.length is not None and self.offset >= self.length

    def stream(self, backend_key: str | None) -> StreamInfo:
        return StreamInfo(
            id=self.id,
            key=backend_key,
            length=self.length,
            offset=self.offset,
            state=self.backend_state,
        )

    def to_json(self) -> str:
        # the fields are JSON types already (str enums, dicts, lists): no deep copy
        return json.dumps(vars(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> UploadRecord:
        data = upgrade(json.loads(text))  # a record an earlier version wrote
        data["kind"] = Kind(data["kind"])
        data["status"] = Status(data["status"])
        return cls(**data)


#: a protocol's word on the record a request addresses, read under its lock
#: before anything is done (``write(check=…)``, ``status``, ``terminate``):
#: raises to refuse — e.g. the access layer's "not yours" as "no such upload"
RecordCheck = Callable[[UploadRecord], Awaitable[None]]
