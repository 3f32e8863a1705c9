"""The pre-create hooks on Qiniu uploads, asked before any byte is accepted
where the protocol lets the gateway know the upload by then: a form upload
whose token comes before the file part (Python, Node SDKs), a token's first
v1 ``mkblk``, v2 ``init``. A form file sent before its token (qiniu-js) is
judged once the token is in, before the object is made (a refusal discards
the staged bytes).

The answer applies as on tus: a 4xx is the client's answer; ``key`` names the
object whatever the put policy would (checked only for being storable);
``metadata`` replaces the user metadata (``x-qn-meta-*``); ``sizeLimit``
bounds the file (413). ``bucket`` moves a form upload; v1 and v2 requests
name their bucket again and again (the ctx, the URL), so a hook naming
another bucket for them fails the upload (503, logged): the token's scope
is where such uploads go.

What a hook answered at ``mkblk`` / ``init`` is kept with the block or the
session (``FIELD``) and applied at ``mkfile`` / complete.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from gateway.access.gate import GATE
from gateway.access.hooks import RETRY_AFTER
from gateway.access.tokens import UploadToken
from gateway.core import ServiceUnavailable

from .errors import TOO_LARGE
from .placing import check_key
from .runtime import Call

log = logging.getLogger(__name__)

#: record extra (a v1 block, a v2 session): what the pre-create hook answered
FIELD = "hook:pre-create"


@dataclass(frozen=True)
class Approved:
    """A pre-create hook's changes to a Qiniu upload (None: unchanged)."""

    key: str | None = None
    bucket: str | None = None
    metadata: dict[str, str] | None = None
    size_limit: int | None = None

    def as_extra(self) -> dict[str, Any]:
        kept = {
            "key": self.key,
            "bucket": self.bucket,
            "metadata": self.metadata,
            "sizeLimit": self.size_limit,
        }
        kept = {name: value for name, value in kept.items() if value is not None}
        return {FIELD: kept} if kept else {}

    @classmethod
    def of_extra(cls, extra: dict[str, Any]) -> Approved:
        kept = extra.get(FIELD)
        if not isinstance(kept, dict):
            return cls()
        metadata = kept.get("metadata")
        limit = kept.get("sizeLimit")
        return cls(
            key=kept.get("key") if isinstance(kept.get("key"), str) else None,
            bucket=kept.get("bucket") if isinstance(kept.get("bucket"), str) else None,
            metadata=dict(metadata) if isinstance(metadata, dict) else None,
            size_limit=limit if isinstance(limit, int) else None,
        )

    def check_size(self, size: int) -> None:
        """413 past the hook's ``sizeLimit``."""
        if self.size_limit is not None and size > self.size_limit:
            raise TOO_LARGE.error(f"this upload may be at most {self.size_limit} bytes")

    def user_metadata(self, given: dict[str, str]) -> dict[str, str]:
        return given if self.metadata is None else self.metadata


async def ask(
    call: Call,
    token: UploadToken,
    *,
    key: str | None,
    metadata: dict[str, str],
    size: int | None = None,
    step: str = "form",
    once: bool = False,
) -> Approved:
    """The pre-create hooks' word on an upload with ``token`` (payload as
    tus's: protocol, bucket, key, size, metadata, endUser). With ``once``
    (v1 blocks), an approval is remembered for the token's later requests."""
    gate = call.request.app[GATE]
    policy = token.policy
    if key is None and policy.scope_key is not None and not policy.prefixal:
        key = policy.scope_key
    payload = {
        "protocol": "qiniu",
        "bucket": policy.bucket,
        "key": key,
        "size": size,
        "metadata": metadata,
        "endUser": policy.end_user,
    }
    if once:
        changes = await gate.pre_create_once(token.raw, policy.deadline, payload)
    else:
        changes = await gate.pre_create(payload)
    bucket = changes.bucket if changes.bucket != policy.bucket else None
    if bucket is not None and step != "form":
        log.error(
            "pre-create hook moved a Qiniu %s upload to bucket %r: only form uploads can "
            "move (the later requests name the token's bucket %r)",
            step,
            bucket,
            policy.bucket,
        )
        raise ServiceUnavailable("an upload hook is unavailable; retry later", RETRY_AFTER)
    if changes.key is not None:
        check_key(call, bucket or policy.bucket, changes.key)
    approved = Approved(changes.key, bucket, changes.metadata, changes.size_limit)
    if size is not None:
        approved.check_size(size)
    return approved
