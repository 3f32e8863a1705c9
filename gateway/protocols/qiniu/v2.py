"""Resumable v2 (multipart): init, upload part, list, complete, abort, on
the core's multipart sessions (``gateway/core/multipart.py``: an uploadId is
a session, a part one numbered part of it).

Each part is one request, so its SHA-1s and first bytes are taken while it
streams and kept with the part (its MD5, the etag, is the core's); the core
checks ``Content-MD5`` before the part is sealed. Completion names the qetag
from the SHA-1s (v1 form when every part but the last is exactly 4 MiB, else
the v2 form) and assembles the parts in the store.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aiohttp import web

from gateway import content_types as mime
from gateway import core
from gateway.access import qetag
from gateway.access.codec import b64decode_text
from gateway.access.ownership import admits, grant_of, owner_of
from gateway.access.tokens import UploadToken
from gateway.core import MAX_PART_NUMBER, Admit, ObjectMeta, Part, Session
from gateway.numbers import parse_count
from gateway.protocols.bodies import body_read, request_body

from . import pre_create
from .errors import BAD_REQUEST, CRC32_MISMATCH, FORBIDDEN, TOO_LARGE
from .placing import NewFile, check_key, place
from .responses import json_response
from .runtime import Call
from .shared import Head, custom_vars, user_metadata

MIN_PART_SIZE = 1024 * 1024
MAX_PART_SIZE = 1024 * 1024 * 1024
_MAX_COMPLETE_BODY = 8 * 1024 * 1024


def _authorize(call: Call) -> tuple[UploadToken, str, str | None]:
    """Token, bucket and object key (None for ``~``) of a v2 request."""
    token = call.runtime.verify_header(call.request)
    bucket = call.request.match_info["bucket"]
    if bucket != token.policy.bucket:
        raise FORBIDDEN.error("bucket doesn't match with scope")
    call.check_bucket(bucket)
    obj = call.request.match_info["obj"]
    key = None if obj == "~" else b64decode_text(obj, "object key")
    return token, bucket, key


def _admit(token: UploadToken) -> Admit:
    """A session is used only with a token of its scope and endUser."""
    grant = grant_of(token)
    return lambda record: admits(grant, record)


async def _session(call: Call, token: UploadToken, bucket: str, key: str | None) -> Session:
    """The open session the request names, if ``token`` may use it (612
    ``no such uploadId`` else)."""
    upload_id = call.request.match_info["upload_id"]
    session = await call.service.multipart.session(upload_id, bucket, "qiniu", _admit(token))
    _check_key(session, key)
    return session


def _check_key(session: Session, key: str | None) -> None:
    if key is not None and key != session.key:
        raise BAD_REQUEST.error("the object key does not match the upload")


async def init(request: web.Request) -> web.Response:
    call = Call.of(request)
    token, bucket, key = _authorize(call)
    if key is not None:
        check_key(call, bucket, key)
        token.policy.check_key(key)
    # the pre-create hooks: a refusal, or changes kept with the session for
    # complete (the SDK names the key it asked for in every later request)
    approved = await pre_create.ask(call, token, key=key, metadata={}, step="v2")
    session = await call.service.multipart.open(
        protocol="qiniu",
        bucket=bucket,
        key=key,
        ttl=call.runtime.context_ttl,
        extra={**owner_of(grant_of(token)), **approved.as_extra()},
        direct=None if approved.key else _direct_meta(token, key),  # a hook's key: at complete
    )
    return json_response({"uploadId": session.id, "expireAt": int(session.expires_at)})


def _direct_meta(token: UploadToken, key: str | None) -> ObjectMeta | None:
    """What the object will be, when it can be known before its bytes: then
    its parts may go straight into an upload on ``key`` in the store
    (``core/multipart.py``). Not when the policy names the key itself or
    decides the type from the content. The type guessed here (from the key)
    is replaced at completion if the client's fname / mimeType decide
    otherwise."""
    policy = token.policy
    if key is None or (policy.force_save_key and policy.save_key) or policy.sniff_content:
        return None
    return ObjectMeta(content_type=mime.decide(None, None, key, b"", from_content=False))


def _content_md5(value: str | None) -> bytes | None:
    """``Content-MD5`` as SDKs send it: hex (most) or base64 (the standard)."""
    if not value:
        return None
    value = value.strip()
    try:
        if len(value) == 32:
            return bytes.fromhex(value)
        digest = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise BAD_REQUEST.error("invalid Content-MD5") from None
    if len(digest) != 16:
        raise BAD_REQUEST.error("invalid Content-MD5")
    return digest


async def upload_part(request: web.Request) -> web.Response:
    call = Call.of(request)
    token, bucket, key = _authorize(call)
    session = await _session(call, token, bucket, key)
    number = parse_count(request.match_info["part"], "part number", 1, MAX_PART_NUMBER)
    length = request.content_length
    if length is not None and length > MAX_PART_SIZE:
        raise TOO_LARGE.error()
    if length is not None:
        pre_create.Approved.of_extra(session.extra).check_size(length)
    expected_md5 = _content_md5(request.headers.get("Content-MD5"))
    hasher, head = qetag.BlockHasher(), Head()
    body = request_body(request)

    def info() -> dict[str, Any]:
        """Kept with the part: its SHA-1s (for the qetag), the head of part 1."""
        kept: dict[str, Any] = {"sha1s": qetag.to_hex(hasher.digests())}
        if number == 1:
            kept["head"] = base64.b64encode(bytes(head.data)).decode()
        return kept

    try:
        part = await call.service.multipart.put_part(
            session,
            number,
            body,
            content_length=length,
            content_md5=expected_md5,
            hashers=[hasher, head],
            info=info,
        )
    except core.ChecksumMismatch:
        raise CRC32_MISMATCH.error("Content-MD5 mismatch") from None
    except core.BadRequest:
        body.check()  # a body cut short by a silent client (408) or a malformed one
        raise
    return json_response({"etag": part.etag, "md5": part.etag})


async def list_parts(request: web.Request) -> web.Response:
    call = Call.of(request)
    token, bucket, key = _authorize(call)
    session = await _session(call, token, bucket, key)
    query = request.query
    limit = parse_count(query.get("max-parts", "1000") or "1000", "max-parts", 1, 1000)
    marker_text = query.get("part-number-marker") or query.get("part-number_marker") or "0"
    marker = parse_count(marker_text, "part-number-marker", 0, MAX_PART_NUMBER)
    parts, truncated = await call.service.multipart.list_parts(session, marker, limit)
    return json_response(
        {
            "uploadId": session.id,
            "expireAt": int(session.expires_at),
            "partNumberMarker": parts[-1].number if truncated else 0,
            "parts": [
                {
                    "size": part.size,
                    "etag": part.etag,
                    "partNumber": part.number,
                    "putTime": part.put_time,
                }
                for part in parts
            ],
        }
    )


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BAD_REQUEST.error(f"invalid {what}")
    return value


def _parse_complete(raw: bytes) -> tuple[list[tuple[int, str]], dict[str, Any]]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise BAD_REQUEST.error("invalid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("parts"), list) or not body["parts"]:
        raise BAD_REQUEST.error("parts are required")
    listed: list[tuple[int, str]] = []
    for item in body["parts"]:
        if not isinstance(item, dict):
            raise BAD_REQUEST.error("invalid part")
        number, etag = item.get("partNumber"), item.get("etag")
        if not isinstance(number, int) or not isinstance(etag, str):
            raise BAD_REQUEST.error("invalid part")
        if listed and number <= listed[-1][0]:
            raise BAD_REQUEST.error("parts must be in ascending order")
        listed.append((number, etag))
    return listed, body


async def complete(request: web.Request) -> web.Response:
    call = Call.of(request)
    token, bucket, key = _authorize(call)
    await _session(call, token, bucket, key)
    if (request.content_length or 0) > _MAX_COMPLETE_BODY:
        raise BAD_REQUEST.error("request body too large")
    listed, body = _parse_complete(await body_read(request, request.read()))
    multipart = call.service.multipart
    upload_id = request.match_info["upload_id"]
    async with multipart.completing(upload_id, bucket, "qiniu", _admit(token)) as session:
        _check_key(session, key)
        found = await multipart.parts(session, [number for number, _ in listed])
        parts: list[Part] = []
        for (number, etag), part in zip(listed, found, strict=True):
            if part is None:
                raise BAD_REQUEST.error(f"part {number} is not uploaded")
            if part.etag != etag:
                raise BAD_REQUEST.error(f"part {number} does not match its etag")
            parts.append(part)
        sizes = [p.size for p in parts]
        if any(size < MIN_PART_SIZE for size in sizes[:-1]):
            raise BAD_REQUEST.error("every part but the last must be at least 1 MiB")
        approved = pre_create.Approved.of_extra(session.extra)
        approved.check_size(sum(sizes))
        pieces = [qetag.Piece(p.size, qetag.from_hex(p.info.get("sha1s", []))) for p in parts]
        head_text = parts[0].info.get("head") if parts[0].number == 1 else None

        async def head() -> bytes:
            return base64.b64decode(head_text) if head_text else b""

        metadata = approved.user_metadata(user_metadata(_mapping(body.get("metadata"), "metadata")))

        async def store(final_key: str, extra: dict[str, Any], meta: ObjectMeta) -> None:
            await multipart.complete(
                session, parts, final_key, metadata=metadata, extra=extra, meta=meta
            )

        async def discard() -> None:
            await multipart.discard([p.id for p in parts])
            await multipart.end(session)

        new = NewFile(
            bucket=bucket,
            size=sum(sizes),
            etag=qetag.of_pieces(pieces, multipart=True),
            layout=sizes,
            client_key=session.key,
            fname=body.get("fname") if isinstance(body.get("fname"), str) else None,
            client_mime=body.get("mimeType") if isinstance(body.get("mimeType"), str) else None,
            custom=custom_vars(_mapping(body.get("customVars"), "customVars")),
            metadata=metadata,
            head=head,
            hook_key=approved.key,
        )
        return await place(call, token, new, store, discard)


async def abort(request: web.Request) -> web.Response:
    call = Call.of(request)
    token, bucket, key = _authorize(call)
    await _session(call, token, bucket, key)
    upload_id = request.match_info["upload_id"]
    await call.service.multipart.abort(upload_id, bucket, "qiniu", _admit(token))
    return json_response({})
