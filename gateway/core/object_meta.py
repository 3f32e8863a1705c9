"""An object's metadata as the core keeps it on the upload record.

A protocol asks for a content type and a lifetime (``ObjectMeta``) when it
makes an object (``UploadService.commit_part`` / ``create_assembly``). They
are kept in the record's ``extra`` under ``core:object`` (so an assembly made
later still has them), handed to the backend's ``commit`` / ``assemble``,
and, for object expiry the store cannot do itself, completed with the
object's ``version`` at the time it was made:

* the finished record then carries ``expires_at = delete_at``, so the
  existing sweeper (``expired()`` of either state store) picks it up;
* the sweeper deletes the object only if ``stat`` still reports that
  version: an object replaced since by a newer upload is left alone.
"""

from __future__ import annotations

from typing import Any

from backends.base import ObjectInfo, ObjectMeta
from gateway.core.records import UploadRecord

_KEY = "core:object"
#: record extra: the object must not replace one made at its key meanwhile
_INSERT_ONLY = "core:insert-only"
#: record extra: the store makes the object only if its key holds none
_IF_ABSENT = "core:if-absent"
#: record extra: written whole by the call that created it (``Uploads.put``)
_ONE_WRITE = "core:one-write"
#: ``digests.SHA256`` (not imported: ``digests`` needs more than this module)
SHA256 = "core:sha256"
#: record extra: the key names the content (a saveKey with ``$(etag)``): these
#: texts joined by the object's qetag (``QETAG``, known at its last byte)
_KEY_BY_ETAG = "core:key-by-etag"
#: the object's qetag (``digests`` computes it for a record named by it)
QETAG = "core:qetag"


def with_meta(extra: dict[str, Any] | None, meta: ObjectMeta | None) -> dict[str, Any]:
    """``extra`` plus ``meta`` (a copy)."""
    out = dict(extra or {})
    if meta is not None:
        out[_KEY] = {"content_type": meta.content_type, "delete_at": meta.delete_at}
    return out


def insert_only(extra: dict[str, Any] | None) -> dict[str, Any]:
    """``extra`` (a copy) for a record whose object may be made only where no
    object is (a put policy's ``insertOnly``): checked under the object lock
    when it is made (``Ledger.committing``); until then its bytes are written
    away from the key, so a store never makes the object early."""
    return {**(extra or {}), _INSERT_ONLY: True}


def is_insert_only(record: UploadRecord) -> bool:
    return record.extra.get(_INSERT_ONLY) is True


def if_absent(extra: dict[str, Any] | None) -> dict[str, Any]:
    """``extra`` (a copy) for a stream written whole on its key in one write
    whose store makes the object only where none is (``Uploads.put``)."""
    return {**(extra or {}), _IF_ABSENT: True}


def is_if_absent(record: UploadRecord) -> bool:
    return record.extra.get(_IF_ABSENT) is True


def one_write(extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` (a copy) for a stream written whole by the call that
    creates it (``StreamInfo.one_write``)."""
    return {**extra, _ONE_WRITE: True}


def is_one_write(record: UploadRecord) -> bool:
    return record.extra.get(_ONE_WRITE) is True


def key_by_etag(extra: dict[str, Any] | None, parts: list[str]) -> dict[str, Any]:
    """``extra`` (a copy) for a record whose key is ``etag.join(parts)``,
    decided when its last byte is in: until then it has no key and its
    stream none (no store makes the object early), and ``digests`` computes
    its qetag as the bytes pass; then it is approved and committed as any
    other (``Ledger.committing``)."""
    return {**(extra or {}), _KEY_BY_ETAG: list(parts)}


def named_by_etag(record: UploadRecord) -> bool:
    return isinstance(record.extra.get(_KEY_BY_ETAG), list)


def key_of_etag(record: UploadRecord) -> str | None:
    """The key of a record named by its etag, once the qetag is known."""
    parts, etag = record.extra.get(_KEY_BY_ETAG), record.extra.get(QETAG)
    if not isinstance(parts, list) or not isinstance(etag, str):
        return None
    return etag.join(str(p) for p in parts)


def put(record: UploadRecord, meta: ObjectMeta | None) -> None:
    if meta is not None:
        record.extra.update(with_meta(None, meta))


def of(record: UploadRecord) -> ObjectMeta | None:
    data = record.extra.get(_KEY)
    if not isinstance(data, dict):
        return None
    content_type, delete_at = data.get("content_type"), data.get("delete_at")
    return ObjectMeta(
        content_type=content_type if isinstance(content_type, str) else None,
        delete_at=int(delete_at) if isinstance(delete_at, (int, float)) else None,
    )


def content_type(record: UploadRecord) -> str | None:
    """The content type ``record``'s object was made with, if one was given."""
    meta = of(record)
    return meta.content_type if meta is not None else None


def stored(record: UploadRecord, sha256: str | None = None) -> ObjectMeta | None:
    """What the store keeps with ``record``'s object: ``of`` and its SHA-256
    (``sha256``, else the one recorded)."""
    meta, sha256 = of(record), sha256 or record.extra.get(SHA256)
    if not isinstance(sha256, str):
        return meta
    if meta is None:
        return ObjectMeta(sha256=sha256)
    return ObjectMeta(content_type=meta.content_type, delete_at=meta.delete_at, sha256=sha256)


def schedule(record: UploadRecord, meta: ObjectMeta, info: ObjectInfo | None) -> None:
    """The finished ``record`` expires (object and all) at ``meta.delete_at``."""
    assert meta.delete_at is not None
    record.extra[_KEY]["version"] = info.version if info is not None else None
    record.extra[_KEY]["size"] = info.size if info is not None else record.offset
    record.expires_at = float(meta.delete_at)


def is_same(record: UploadRecord, info: ObjectInfo) -> bool:
    """Is ``info`` (the object at the key now) the one ``record`` made?"""
    data = record.extra.get(_KEY)
    if not isinstance(data, dict):
        return False
    if data.get("version") is not None:
        return bool(info.version == data["version"])
    return info.size == data.get("size")  # the store gave no version: sizes only
