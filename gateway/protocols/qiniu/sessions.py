"""v2 multipart sessions: what an ``uploadId`` names.

A session is an upload record of its own (``Kind.ASSEMBLY``, no parts yet,
``extra.qiniu == "v2"``) in the core's state store, so it is shared by every
instance, survives restarts and expires with the sweeper. Its parts are core
streams with derived ids (``<uploadId>-<partNumber>``): any instance finds
part *n* without a map, and a request's cost does not grow with the number of
parts. The session keeps only the highest part number seen (for listing and
abort). Completion assembles the parts into a new record and ends the
session (a tombstone: a later call answers ``612 no such uploadId``).
"""

from __future__ import annotations

from gateway.access.ownership import admits, grant_of, owner_of
from gateway.access.tokens import UploadToken
from gateway.core import errors as core
from gateway.core.records import Kind, Status, UploadRecord
from gateway.core.service import UploadService

from .errors import NO_SUCH_UPLOAD

V2 = "v2"
MAX_PART_NUMBER = 10000


def part_id(upload_id: str, number: int) -> str:
    return f"{upload_id}-{number}"


async def create(
    service: UploadService, bucket: str, key: str | None, ttl: float, token: UploadToken
) -> UploadRecord:
    extra = {"qiniu": V2, "maxPart": 0, **owner_of(grant_of(token))}
    return await service.create_session(
        protocol="qiniu", bucket=bucket, key=key, ttl=ttl, extra=extra
    )


async def get(
    service: UploadService, upload_id: str, bucket: str, token: UploadToken
) -> UploadRecord:
    """The open session, if ``token`` may use it (its scope covers the
    session's key, or is the same scope, and the same endUser); else 612
    ``no such uploadId``."""
    try:
        record = await service.get(upload_id)
    except (core.UploadNotFound, core.UploadGone):
        raise NO_SUCH_UPLOAD.error() from None
    if (
        record.protocol != "qiniu"
        or not admits(grant_of(token), record)
        or record.kind is not Kind.ASSEMBLY
        or record.extra.get("qiniu") != V2
        or record.bucket != bucket
        or record.status is not Status.ACTIVE
    ):
        raise NO_SUCH_UPLOAD.error()
    return record


async def note_part(service: UploadService, upload_id: str, number: int) -> None:
    """Raise the session's highest part number to ``number``."""

    def raise_max(record: UploadRecord) -> bool:
        if int(record.extra.get("maxPart", 0)) >= number:
            return False
        record.extra["maxPart"] = number
        return True

    await service.update(upload_id, raise_max)


async def end(service: UploadService, upload_id: str) -> None:
    """Close the session; its id answers 612 from now on."""
    await service.close_session(upload_id)


async def parts(
    service: UploadService, session: UploadRecord, after: int = 0, limit: int = MAX_PART_NUMBER
) -> list[tuple[int, UploadRecord]]:
    """Complete parts numbered above ``after``, ascending, at most ``limit``."""
    found: list[tuple[int, UploadRecord]] = []
    highest = min(int(session.extra.get("maxPart", 0)), MAX_PART_NUMBER)
    for number in range(after + 1, highest + 1):
        record = await service.find(part_id(session.id, number))
        if record is not None and record.status is Status.COMPLETE and "etag" in record.extra:
            found.append((number, record))
            if len(found) >= limit:
                break
    return found
