"""The digest index's vocabulary: the record fields the digest work and
instant upload share, whose object an upload makes, and indexing a finished
object (``Ledger.finished``). ``instant.py`` says how the index is kept."""

from __future__ import annotations

import logging

from gateway.access.ownership import OWNER_FIELD
from gateway.core.errors import ServiceUnavailable
from gateway.core.records import Status, UploadRecord
from gateway.core.state.base import IndexedObject, StateStore
from gateway.digest_fields import DECLARED

log = logging.getLogger(__name__)

#: record extra: the SHA-256 (hex) of a finished object's bytes
SHA256 = "core:sha256"
#: record extra of an upload completed at creation: ``{"from": source key}``
INSTANT = "core:instant"
#: the owner of uploads made without a credential
ANONYMOUS = "anonymous"


def owner_key(record: UploadRecord) -> str:
    """Whose object ``record`` makes, as the index names owners."""
    owner = record.extra.get(OWNER_FIELD)
    if not isinstance(owner, dict):
        return ANONYMOUS
    if owner.get("endUser") is not None:
        return f"user:{owner['endUser']}"
    return f"scope:{owner.get('scope')}"


def declared_sha256(record: UploadRecord) -> str | None:
    declared = record.extra.get(DECLARED)
    if not isinstance(declared, dict):
        return None
    value = declared.get("sha-256")
    return value.lower() if isinstance(value, str) else None


def is_instant(record: UploadRecord) -> bool:
    """Was ``record`` completed at its creation by a copy?"""
    return INSTANT in record.extra


async def index(state: StateStore, record: UploadRecord) -> None:
    """Index a finished object by its SHA-256 (none computed: nothing to index;
    its key lost any entry at the commit point)."""
    sha256 = record.extra.get(SHA256)
    if record.key is None or not isinstance(sha256, str) or record.status is not Status.FINISHED:
        return
    entry = IndexedObject(
        bucket=record.bucket,
        key=record.key,
        sha256=sha256.lower(),
        size=record.offset,
        owner=owner_key(record),
        upload_id=record.id,
    )
    try:
        await state.index_put(entry)
    except ServiceUnavailable as exc:  # the object stands; it just cannot be matched
        log.warning("digest index: %s/%s not indexed: %s", record.bucket, record.key, exc)
