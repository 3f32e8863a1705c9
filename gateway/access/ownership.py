"""Uploads belong to their creator.

A record made with a credential carries its owner (``extra["access"]``: the
scope and endUser of the grant). Every later request on it needs a grant
whose scope covers the record's bucket and key (the same scope while no key
is known) and the same endUser if the owner had one. A record made without
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
    if grant is None or grant.policy.bucket != record.bucket:
        return False
    if owner.get("endUser") is not None and grant.end_user != owner["endUser"]:
        return False
    if record.key is not None:
        return grant.policy.covers(record.key)
    return grant.policy.scope == owner.get("scope")
