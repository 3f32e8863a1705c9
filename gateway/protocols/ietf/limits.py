"""``Upload-Limit``: the limits the gateway really enforces.

``max-size`` is the smaller of ``server.max_upload_size`` and the store's
largest object; the store's per-request minimum does not apply to uploads on
this path (S3 keeps short tails as temporaries), so no ``min-append-size`` /
``max-append-size`` is announced. The upload's remaining lifetime goes out as
``expires`` (drafts -04, -05) or ``max-age`` (-06 on). With no limit at all
the drafts want ``min-size=0`` rather than an empty field.
"""

from __future__ import annotations

import time

from gateway.core import Status, UploadRecord
from gateway.protocols.ietf.fields import dictionary
from gateway.protocols.ietf.versions import Version
from gateway.protocols.tus.context import TusContext


def max_size(ctx: TusContext) -> int:
    """The largest upload accepted on this path; 0 = no limit."""
    sizes = [
        ctx.config.server.max_upload_size,
        ctx.service.max_object_size(ctx.bucket),
    ]
    return min((s for s in sizes if s), default=0)


def upload_limit(ctx: TusContext, version: Version, record: UploadRecord | None) -> str | None:
    """The ``Upload-Limit`` value, None for a version without the field."""
    if not version.upload_limit:
        return None
    members: dict[str, int] = {}
    largest = max_size(ctx)
    if largest:
        members["max-size"] = largest
    if (
        version.lifetime_key
        and record is not None
        and record.status is Status.ACTIVE
        and record.expires_at is not None
    ):
        members[version.lifetime_key] = max(0, int(record.expires_at - time.time()))
    return dictionary(members or {"min-size": 0})
