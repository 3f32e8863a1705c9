"""The last step shared by form upload, ``mkfile`` and v2 complete: the bytes
are stored as finished streams; now name the object, apply the put policy,
make the object, and answer as the policy asks.

Order: deadline → size → MIME → key (client key / saveKey / hash) → scope →
insert-only (614 unless the existing object has the same content) → store →
callback (579) / ``returnUrl`` (303) / ``returnBody`` / ``{hash, key, url}``.

The object is stored with its ``mimeType`` as content type and, under
``deleteAfterDays``, a lifetime (the store's own expiry, else the gateway's
sweeper deletes it: ``gateway/core/object_meta.py``).
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway import content_types as mime
from gateway import core
from gateway.access import qetag
from gateway.access.codec import b64encode
from gateway.access.magic import Mode, Value, build_vars, render
from gateway.access.ownership import grant_of, owner_of
from gateway.access.tokens import UploadToken
from gateway.content_types import OCTET_STREAM, content_type, file_name
from gateway.core import ObjectMeta

from . import callback
from .errors import BAD_REQUEST, FILE_EXISTS
from .responses import json_response, raw_json_response
from .runtime import Call

#: store the object at ``key``, with ``extra`` for the record (hash, url…)
#: and the object's own metadata (content type, lifetime)
Store = Callable[[str, dict[str, Any], ObjectMeta], Awaitable[None]]
Discard = Callable[[], Awaitable[None]]


@dataclass
class NewFile:
    bucket: str
    size: int
    etag: str
    #: sizes of the pieces the etag was computed over (v2 parts); empty = v1
    layout: Sequence[int] = ()
    client_key: str | None = None
    fname: str | None = None
    client_mime: str | None = None
    custom: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    #: the first bytes of the content, fetched only when the MIME type needs them
    head: Callable[[], Awaitable[bytes]] | None = None
    #: the key a pre-create hook chose (``pre_create.py``): the policy names none
    hook_key: str | None = None
    #: ``store`` makes the object only if its key holds none, else raises
    #: ``core.ObjectExists`` (a held form file where the store can)
    if_absent: bool = False
    #: the time and ``$(uuid)`` of the upload, when a key was planned with
    #: them before the bytes (``planned_key``); else taken in ``place``
    moment: Moment | None = None


@dataclass(frozen=True)
class Moment:
    """What a ``saveKey`` may use besides the policy and the bucket: the
    upload's time and ``$(uuid)``, fixed once."""

    now: datetime = field(default_factory=lambda: datetime.now().astimezone())
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))


#: the magic variables whose values are known before a form's file: the
#: others are of its bytes (etag, fsize, mimeType, and ext, found from it
#: without a name) or of fields that may follow the file (fname, x:…)
_KNOWN_FIRST = frozenset(
    {"bucket", "key", "url", "endUser", "uuid", "deadline", "year", "mon", "day", "hour", "min",
     "sec"}
)  # fmt: skip
_VARIABLE = re.compile(r"\$\(([^)]*)\)")


def planned_key(
    token: UploadToken,
    bucket: str,
    client_key: str | None,
    hook_key: str | None,
    moment: Moment,
) -> str | None:
    """The key ``place`` will give a file, decided before its bytes, or
    None where it may depend on them or on fields after them: a pre-create
    hook's key; a forced ``saveKey`` of variables known first; the client's
    ``key``; the scope's key (a ``key`` field after the file can only equal
    it or be refused). Not an unforced ``saveKey``: a ``key`` field after
    the file would replace it."""
    policy = token.policy
    if hook_key:
        return hook_key
    if policy.force_save_key and policy.save_key:
        names = {m.strip() for m in _VARIABLE.findall(policy.save_key)}
        if not names <= _KNOWN_FIRST:
            return None
        values = _variables(token, bucket, None, None, None, None, None, {}, moment, None)
        return render(policy.save_key, values, Mode.RAW)
    if client_key is not None:
        return client_key
    if policy.scope_key is not None and not policy.prefixal:
        return policy.scope_key
    return None


def content_type_of(
    token: UploadToken,
    client_mime: str | None,
    fname: str | None,
    client_key: str | None,
    head: bytes,
) -> str:
    """The MIME type ``place`` decides for a file (``head``: its first bytes)."""
    new = NewFile(
        bucket="", size=0, etag="", client_key=client_key, fname=file_name(fname),
        client_mime=client_mime,
    )  # fmt: skip
    return _decide_mime(token, new, head)


def _decide_mime(token: UploadToken, new: NewFile, head: bytes) -> str:
    sniff = token.policy.sniff_content
    if not _needs_sniff(new, sniff):
        head = b""
    return mime.decide(new.client_mime, new.fname, new.client_key, head, sniff)


def _variables(
    token: UploadToken,
    bucket: str,
    key: str | None,
    etag: str | None,
    fsize: int | None,
    mime_type: str | None,
    url: str | None,
    custom: dict[str, str],
    moment: Moment,
    fname: str | None,
) -> dict[str, Value]:
    policy = token.policy
    return build_vars(
        bucket=bucket,
        key=key,
        etag=etag or None,
        fsize=fsize,
        mime_type=mime_type,
        fname=fname,
        end_user=policy.end_user,
        url=url,
        deadline=policy.deadline or None,
        custom=custom,
        now=moment.now,
        uuid=moment.uuid,
    )


def check_key(call: Call, bucket: str, key: str) -> None:
    """400 with the reason when ``key`` cannot be stored and served
    (``gateway/keys.py``)."""
    problem = call.service.key_problem(bucket, key)
    if problem is not None:
        raise BAD_REQUEST.error(f"invalid key: {problem}")


def _needs_sniff(new: NewFile, from_content: bool) -> bool:
    given = (content_type(new.client_mime) or "").lower()
    if from_content:
        return True
    if given and given != OCTET_STREAM:
        return False
    return mime.by_name(new.fname) is None and mime.by_name(new.client_key) is None


async def place(
    call: Call,
    token: UploadToken,
    new: NewFile,
    store: Store,
    discard: Discard,
    accept: str | None = None,
) -> web.Response:
    """Make the object and answer. ``discard`` drops the new bytes when they
    are not needed (identical content exists, or 614)."""
    policy = token.policy
    new.fname = file_name(new.fname)
    policy.check_deadline()
    policy.check_size(new.size)
    head = b""
    if new.head is not None and _needs_sniff(new, policy.sniff_content):
        head = await new.head()
    mime_type = _decide_mime(token, new, head)
    policy.check_mime(mime_type)

    moment = new.moment or Moment()
    now = moment.now

    def variables(key: str | None, url: str | None) -> dict[str, Value]:
        return _variables(token, new.bucket, key, new.etag, new.size, mime_type, url,
                          new.custom, moment, new.fname)  # fmt: skip

    key = new.hook_key or policy.resolve_key(
        new.client_key, lambda template: render(template, variables(None, None), Mode.RAW)
    )
    if key is None:
        key = new.etag
    check_key(call, new.bucket, key)
    if new.hook_key is None:  # the business chose a hook's key itself
        policy.check_key(key)

    url = await call.service.object_url(new.bucket, key, call.base_url, mime_type)
    # the object's owner (the token's scope and endUser): instant upload matches by it
    extra: dict[str, Any] = {"hash": new.etag, "url": url, "mimeType": mime_type}
    extra.update(owner_of(grant_of(token)))
    if new.fname:
        extra["fname"] = new.fname
    if new.custom:
        extra["customVars"] = dict(new.custom)
    meta = ObjectMeta(content_type=mime_type, delete_at=policy.delete_at(now.timestamp()))
    async with call.service.object_lock(new.bucket, key):
        # only a token that may not replace an object needs to know of one;
        # where ``store`` makes it only if the key is free, it finds out then
        existing = None
        if not policy.may_overwrite and not new.if_absent:
            existing = await call.service.stat_object(new.bucket, key)
        if existing is None:
            try:
                await store(key, extra, meta)
            except core.ObjectExists:
                if not new.if_absent:
                    raise
                existing = await call.service.stat_object(new.bucket, key)
                if existing is None:  # deleted meanwhile: the client tries again
                    raise core.ServiceUnavailable("the key changed during the upload") from None
        if existing is not None:
            if existing.size != new.size or await _etag_of_object(call, new, key) != new.etag:
                await discard()
                raise FILE_EXISTS.error()
            await discard()  # the same content is there already: nothing to write
    return await respond(call, token, variables(key, url), accept)


async def _etag_of_object(call: Call, new: NewFile, key: str) -> str:
    """The etag of the stored object, computed over ``new``'s piece layout so
    that identical content compares equal in either etag form. (Called only
    when the sizes match.)"""
    ends = list(itertools.accumulate(new.layout or [new.size]))
    pieces: list[qetag.Piece] = []
    hasher = qetag.BlockHasher()
    position = 0
    async for chunk in call.service.read(new.bucket, key):
        view = memoryview(chunk)
        while view:
            piece_end = ends[len(pieces)] if len(pieces) < len(ends) - 1 else None
            take = len(view) if piece_end is None else min(len(view), piece_end - position)
            hasher.update(view[:take])
            position += take
            view = view[take:]
            if piece_end is not None and position == piece_end:
                pieces.append(qetag.Piece(hasher.size, tuple(hasher.digests())))
                hasher = qetag.BlockHasher()
    pieces.append(qetag.Piece(hasher.size, tuple(hasher.digests())))
    return qetag.of_pieces(pieces, multipart=bool(new.layout))


def _content_type(accept: str | None) -> str:
    if accept:
        for choice in ("application/json", "text/plain", "text/html"):
            if choice in accept.lower():
                return choice
    return "application/json"


async def respond(
    call: Call, token: UploadToken, values: dict[str, Value], accept: str | None = None
) -> web.Response:
    policy = token.policy
    content_type = _content_type(accept)
    if policy.has_callback:
        body_type = policy.callback_body_type or callback.FORM_TYPE
        body = render(
            policy.callback_body or callback.DEFAULT_BODY, values, callback.body_mode(body_type)
        )
        pair = call.runtime.verifier.pair(token.access_key)
        assert pair is not None  # the token was verified with it
        answer = await callback.send(
            call.runtime.http(),
            callback.Callback(policy.callback_urls, body, body_type, policy.callback_host),
            pair,
            timeout=call.config.qiniu.callback_timeout,
        )
        return raw_json_response(answer, content_type=content_type)
    body_text = render(policy.return_body, values, Mode.JSON) if policy.return_body else None
    default = {"hash": values["etag"], "key": values["key"], "url": values["url"]}
    if policy.return_url:
        ret = body_text if body_text is not None else json.dumps(default, separators=(",", ":"))
        sep = "&" if "?" in policy.return_url else "?"
        location = f"{policy.return_url}{sep}upload_ret={b64encode(ret)}"
        return web.Response(status=303, headers={"Location": location})
    if body_text is not None:
        return raw_json_response(body_text.encode(), content_type=content_type)
    return json_response(default, content_type=content_type)
