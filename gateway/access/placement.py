"""Where an upload made with a grant lands, and what it may be — for
protocols that name objects at creation (tus; the key must be known before
the first byte, as S3 opens the object then).

The key is the put policy's: ``forceSaveKey`` → ``saveKey``; the key fixed
by the scope; ``saveKey``; else the protocol's fallback (the upload id),
under the scope's prefix for a prefixal scope. ``saveKey`` may use every
magic variable known at creation (``$(fname)``, ``$(ext)``, ``$(endUser)``,
``$(x:…)``, ``$(fsize)`` when the length is declared, dates, ``$(uuid)``).
``$(etag)`` / ``$(hash)`` need the bytes: such a key is a ``KeyByEtag``, the
texts around them rendered now and joined by the qetag when the upload
finishes (``core/object_meta.key_by_etag``); the scope must allow it
whatever the qetag.

``mimeLimit`` is Qiniu's: the content decides the type. A declared type the
limit forbids is refused at creation; the rest is checked on the first bytes
(up to ``SNIFF_BYTES`` of the first request that brings any), before the
store receives them, against the limit of the token that created the upload
(kept on its record, ``content_rules``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.content_types import OCTET_STREAM, decide

from . import qetag
from .errors import BAD_REQUEST, MIME_LIMIT
from .magic import Mode, build_vars, render
from .policy import MimeLimit, PutPolicy

_VARIABLE = re.compile(r"\$\(\s*([^)]*?)\s*\)")
_ETAG = re.compile(r"\$\(\s*(?:etag|hash)\s*\)")
#: variables whose value depends on the stored object, unknown until it is made
_NEED_OBJECT = frozenset({"key", "url"})
#: record extra: the creator's ``mimeLimit``, for the first bytes
MIME_LIMIT_FIELD = "access:mimeLimit"


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


def check_content(
    policy: PutPolicy, length: int | None, mime: str | None, fname: str | None = None
) -> None:
    """Size (413 / fsizeMin) and type (mimeLimit) as far as known at
    creation: a declared type (an empty upload: its name's too); the bytes
    decide the rest (``check_first_bytes``)."""
    if length is not None:
        policy.check_size(length)
    limit = policy.mime_limit
    if limit is None:
        return
    if length == 0:  # no bytes will come
        check_first_bytes(limit, b"", mime, fname, None)
    elif mime and mime.lower() != OCTET_STREAM and not limit.allows(mime):
        raise MIME_LIMIT.error(f"limited mimeType: this file type ({mime}) is forbidden")


def content_rules(policy: PutPolicy) -> dict[str, Any]:
    """What the record of an upload made under ``policy`` keeps for the
    checks on its bytes (record extra)."""
    text = policy.raw.get("mimeLimit")
    if policy.mime_limit is None or not isinstance(text, str):
        return {}
    return {MIME_LIMIT_FIELD: text}


def mime_limit_of(extra: Mapping[str, Any]) -> MimeLimit | None:
    """The ``mimeLimit`` an upload's first bytes must meet, if any."""
    text = extra.get(MIME_LIMIT_FIELD)
    return MimeLimit.parse(text) if isinstance(text, str) else None


def check_first_bytes(
    limit: MimeLimit, head: bytes, declared: str | None, fname: str | None, key: str | None
) -> None:
    """403 ``limited mimeType`` unless the type the content shows (else the
    name's, else the declared one) is allowed; tus renders it 415."""
    mime = decide(declared, fname, key, head, True)
    if not limit.allows(mime):
        raise MIME_LIMIT.error(f"limited mimeType: this file type ({mime}) is forbidden")


@dataclass(frozen=True)
class KeyByEtag:
    """A key that names the content: ``etag.join(parts)``."""

    parts: tuple[str, ...]

    def with_etag(self, etag: str) -> str:
        return etag.join(self.parts)


def key_for(policy: PutPolicy, new: NewUpload) -> str | KeyByEtag:
    """The object key (checked against the scope: 403 otherwise). A policy
    with ``callbackUrl`` is refused (400): its callback answers a Qiniu
    upload's client, and no tus or IETF answer carries it — ignoring it
    would leave the business service waiting for a call that never comes."""
    if policy.has_callback:
        raise BAD_REQUEST.error(
            "callbackUrl is honoured on Qiniu uploads only; for tus use a pre-finish hook "
            "or the post-finish webhook (hooks:)"
        )

    def render_save_key(template: str) -> str:
        for name in _VARIABLE.findall(template):
            if name in _NEED_OBJECT or (name == "fsize" and new.length is None):
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
        parts = tuple(render(part, values, Mode.RAW) for part in _ETAG.split(template))
        rendered.append(parts)  # the texts around $(etag), rendered apart
        return "".join(parts)

    rendered: list[tuple[str, ...]] = []
    key = policy.resolve_key(None, render_save_key)
    if rendered and len(rendered[0]) > 1:
        by_etag = KeyByEtag(rendered[0])
        # two keys that differ from their qetag's first character on: the
        # scope allows both only if it allows the key of any qetag
        for sample in ("A" * qetag.LENGTH, "B" * qetag.LENGTH):
            policy.check_key(by_etag.with_etag(sample))
        return by_etag
    if key is None:
        prefix = policy.scope_key if policy.prefixal and policy.scope_key else ""
        key = prefix + new.fallback_key
    if not key:
        raise BAD_REQUEST.error("the upload's key is empty")
    policy.check_key(key)
    return key
