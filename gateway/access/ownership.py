"""Uploads belong to their creator.

A record made with a credential carries its owner (``extra["access"]``: the
scope and endUser of the grant). Every later request on it needs a grant of
the same endUser if the owner had one, and either the owner's scope or one
that covers the record's bucket and key. A record made without
a credential (a bucket open to anonymous uploads) is reached by its URL, as
before. Callers answer "not found" when a grant does not admit a record, so
existence is never revealed.
"""

from __future__ import annotations

from typing import Any

from gateway.core.records import UploadRecord

from .credentials import Grant
from .tokens import UploadToken

OWNER_FIELD = "access"


def grant_of(token: UploadToken) -> Grant:
    """The grant of a verified upload token (Qiniu requests)."""
    return Grant(token.policy, "uptoken")


def owner_of(grant: Grant | None) -> dict[str, Any]:
    """The ``extra`` a record created with ``grant`` carries (nothing for none)."""
    if grant is None:
        return {}
    owner: dict[str, Any] = {"scope": grant.policy.scope}
    if grant.end_user is not None:
        owner["endUser"] = grant.end_user
    return {OWNER_FIELD: owner}


def admits(grant: Grant | None, record: UploadRecord) -> bool:
    owner = record.extra.get(OWNER_FIELD)
    if not isinstance(owner, dict):
        return grant is None or grant.policy.bucket == record.bucket
    if grant is None:
        return False
    if owner.get("endUser") is not None and grant.end_user != owner["endUser"]:
        return False
    if grant.policy.scope == owner.get("scope"):
        return True  # the creator's scope (wherever a pre-create hook put the upload)
    return (
        grant.policy.bucket == record.bucket
        and record.key is not None
        and grant.policy.covers(record.key)
    )
