"""The core's vocabulary: what protocols (``gateway/protocols``, the object
URLs) may use. They import from here, never from the core's modules, and
never touch the state store, locks or a backend: the service does.

``UploadService`` (its methods and ``service.multipart``), the records it
returns (``UploadRecord``, ``Kind``, ``Status``), multipart ``Session`` and
``Part``, the errors (render them, each protocol its own way; their statuses
are in ``errors.py``'s docstring) and ``client_message`` (an error's one line
for a client), what a protocol hands in (a ``Checksum``, ``Hasher``s fed as bytes pass, an
``ObjectMeta`` for the object made, ``BodyInterrupted`` from its body
iterator) and ``with_object_meta`` (an object's content type and lifetime
put on a new record's ``extra``; ``object_content_type`` reads it back) and
``with_insert_only`` (its object may not replace one made meanwhile),
``with_key_by_etag`` (its key is decided by its qetag when it finishes), and
``OBJECT_SHA256``, the ``extra`` key of a finished object's SHA-256 (lowercase hex).
"""

import importlib
from typing import TYPE_CHECKING, Any

from backends.base import MemoryBudget, ObjectMeta
from gateway.core.body import BodyInterrupted, Hasher
from gateway.core.checksums import ALGORITHMS, Checksum, Crc32, TrailerChecksum
from gateway.core.errors import (
    RETRY_LATER,
    BadRequest,
    ChecksumMismatch,
    Forbidden,
    HookRejected,
    Locked,
    NoSuchSession,
    NotReady,
    ObjectExists,
    OffsetMismatch,
    RangeNotSatisfiable,
    RequestTimeout,
    ServiceUnavailable,
    TooLarge,
    UnsupportedChecksum,
    UnsupportedMediaType,
    UploadError,
    UploadExists,
    UploadGone,
    UploadNotFound,
    client_message,
)
from gateway.core.object_meta import SHA256 as OBJECT_SHA256
from gateway.core.object_meta import content_type as object_content_type
from gateway.core.object_meta import insert_only as with_insert_only
from gateway.core.object_meta import key_by_etag as with_key_by_etag
from gateway.core.object_meta import with_meta as with_object_meta
from gateway.core.records import Kind, RecordCheck, Status, UploadRecord, new_upload_id

if TYPE_CHECKING:
    from gateway.core.held import HeldBytes
    from gateway.core.multipart import MAX_PART_NUMBER, Admit, Part, Session
    from gateway.core.object_upload import ObjectUpload
    from gateway.core.service import UploadService

#: names whose modules pull in the whole core (and the access layer): loaded
#: on first use, so that importing the vocabulary stays light
_LATER = {
    "MAX_PART_NUMBER": "multipart",
    "Admit": "multipart",
    "HeldBytes": "held",
    "ObjectUpload": "object_upload",
    "Part": "multipart",
    "Session": "multipart",
    "UploadService": "service",
}


if not TYPE_CHECKING:  # hidden from mypy, which would take any name as importable

    def __getattr__(name: str) -> Any:
        if name not in _LATER:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{__name__}.{_LATER[name]}"), name)


__all__ = [
    "ALGORITHMS",
    "MAX_PART_NUMBER",
    "OBJECT_SHA256",
    "RETRY_LATER",
    "Admit",
    "BadRequest",
    "BodyInterrupted",
    "Checksum",
    "ChecksumMismatch",
    "Crc32",
    "Forbidden",
    "Hasher",
    "HeldBytes",
    "HookRejected",
    "Kind",
    "Locked",
    "MemoryBudget",
    "NoSuchSession",
    "NotReady",
    "ObjectExists",
    "ObjectMeta",
    "ObjectUpload",
    "OffsetMismatch",
    "Part",
    "RangeNotSatisfiable",
    "RecordCheck",
    "RequestTimeout",
    "ServiceUnavailable",
    "Session",
    "Status",
    "TooLarge",
    "TrailerChecksum",
    "UnsupportedChecksum",
    "UnsupportedMediaType",
    "UploadError",
    "UploadExists",
    "UploadGone",
    "UploadNotFound",
    "UploadRecord",
    "UploadService",
    "client_message",
    "new_upload_id",
    "object_content_type",
    "with_insert_only",
    "with_key_by_etag",
    "with_object_meta",
]
