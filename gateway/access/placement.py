"""Where an upload made with a grant lands, and what it may be — for
protocols that name objects at creation (tus; the key must be known before
the first byte, as S3 opens the object then).

The key is the put policy's: ``forceSaveKey`` → ``saveKey``; the key fixed
by the scope; ``saveKey``; else the protocol's fallback (the upload id),
under the scope's prefix for a prefixal scope. ``saveKey`` may use every
magic variable known at creation (``$(fname)``, ``$(ext)``, ``$(endUser)``,
``$(x:…)``, ``$(fsize)`` when the length is declared, dates, ``$(uuid)``);
those that need the bytes (``$(etag)``, ``$(hash)``) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import BAD_REQUEST, MIME_LIMIT
from .magic import Mode, build_vars, render
from .policy import PutPolicy

_VARIABLE = re.compile(r"\$\(\s*([^)]*?)\s*\)")
#: variables whose value depends on the bytes, unknown at creation
_NEED_BYTES = frozenset({"etag", "hash", "key", "url"})


@dataclass(frozen=True)
class NewUpload:
    bucket: str
    #: declared length, None when deferred
    length: int | None
    mime: str | None
    fname: str | None
    #: client metadata; ``x:<name>`` entries are ``$(x:<name>)``
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: the key when the policy names none (the upload id)
    fallback_key: str = ""


def check_content(policy: PutPolicy, length: int | None, mime: str | None) -> None:
    """Size (413 / fsizeMin) and type (mimeLimit) as far as known."""
    if length is not None:
        policy.check_size(length)
    if policy.mime_limit is not None:
        declared = mime or "application/octet-stream"
        if not policy.mime_limit.allows(declared):
            raise MIME_LIMIT.error(f"limited mimeType: this file type ({declared}) is forbidden")


def key_for(policy: PutPolicy, new: NewUpload) -> str:
    """The object key (checked against the scope: 403 otherwise)."""

    def render_save_key(template: str) -> str:
        for name in _VARIABLE.findall(template):
            if name in _NEED_BYTES or (name == "fsize" and new.length is None):
                raise BAD_REQUEST.error(
                    f"saveKey uses $({name}), which is not known when this upload is created"
                )
        values = build_vars(
            bucket=new.bucket,
            key=None,
            etag=None,
            fsize=new.length,
            mime_type=new.mime,
            fname=new.fname,
            end_user=policy.end_user,
            deadline=policy.deadline or None,
            custom={k: v for k, v in new.metadata.items() if k.startswith("x:")},
        )
        return render(template, values, Mode.RAW)

    key = policy.resolve_key(None, render_save_key)
    if key is None:
        prefix = policy.scope_key if policy.prefixal and policy.scope_key else ""
        key = prefix + new.fallback_key
    if not key:
        raise BAD_REQUEST.error("the upload's key is empty")
    policy.check_key(key)
    return key
