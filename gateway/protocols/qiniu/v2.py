"""Resumable v2 (multipart): init, upload part, list, complete, abort
(protocol doc §4). Sessions and part naming: ``sessions.py``.

Each part is one request, so its SHA-1s, MD5 and first bytes are taken while
it streams and saved on the part's record (``annotate``); completion names
the qetag from them (v1 form when every part but the last is exactly 4 MiB,
else the v2 form) and assembles the parts in the store.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from backends.base import ObjectMeta
from gateway.access.codec import b64decode_text
from gateway.access.gate import GATE
from gateway.access.tokens import UploadToken
from gateway.core import errors as core
from gateway.core.records import Kind, Status, UploadRecord
from gateway.numbers import parse_count
from gateway.protocols.bodies import body_read, request_body

from . import mime, qetag, sessions
from .errors import BAD_REQUEST, CRC32_MISMATCH, FORBIDDEN, TOO_LARGE
from .placing import NewFile, check_key, place
from .responses import json_response
from .runtime import Call
from .v1 import discard_streams, store_streams

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


async def _session(call: Call, token: UploadToken, bucket: str, key: str | None) -> UploadRecord:
    upload_id = call.request.match_info["upload_id"]
    session = await sessions.get(call.service, upload_id, bucket, token)
    if key is not None and key != session.key:
        raise BAD_REQUEST.error("the object key does not match the upload")
    return session


async def init(request: web.Request) -> web.Response:
    call = Call.of(request)
    token, bucket, key = _authorize(call)
    if key is not None:
        check_key(call, bucket, key)
        token.policy.check_key(key)
    # the pre-create hooks may refuse (their changes do not apply: the SDK
    # names the key in every later request)
    await request.app[GATE].pre_create(
        {
            "protocol": "qiniu",
            "bucket": bucket,
            "key": key,
            "size": None,
            "metadata": {},
            "endUser": token.policy.end_user,
        }
    )
    session = await sessions.create(call.service, bucket, key, call.runtime.context_ttl, token)
    assert session.expires_at is not None
    return json_response({"uploadId": session.id, "expireAt": int(session.expires_at)})


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


class _Head:
    def __init__(self) -> None:
        self.data = bytearray()

    def update(self, data: bytes, /) -> None:
        if len(self.data) < mime.SNIFF_BYTES:
            self.data += data[: mime.SNIFF_BYTES - len(self.data)]


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover


async def upload_part(request: web.Request) -> web.Response:
    call = Call.of(request)
    token, bucket, key = _authorize(call)
    session = await _session(call, token, bucket, key)
    number = parse_count(request.match_info["part"], "part number", 1, sessions.MAX_PART_NUMBER)
    length = request.content_length
    if length is not None and length > MAX_PART_SIZE:
        raise TOO_LARGE.error()
    expected_md5 = _content_md5(request.headers.get("Content-MD5"))
    pid = sessions.part_id(session.id, number)
    service = call.service
    async with service.lock(f"qiniu-part:{pid}"):
        await service.forget(pid)  # a re-upload replaces the part
        record = await service.create(
            protocol="qiniu",
            bucket=bucket,
            key=None,
            length=length,
            kind=Kind.PART,
            extra={"qiniu": sessions.V2, "uploadId": session.id, "part": number},
            upload_id=pid,
        )
        hasher, md5, head = qetag.BlockHasher(), hashlib.md5(), _Head()
        body = request_body(request)
        try:
            try:
                record = await service.write(
                    pid,
                    0,
                    body,
                    hashers=[hasher, md5, head],
                    content_length=length,
                    require_complete_body=True,
                )
            except core.BadRequest:
                body.check()  # a body cut short by a silent client (408) or a malformed one
                raise
            if record.length is None:
                record = await service.write(
                    pid, record.offset, _empty(), declare_length=record.offset
                )
            if expected_md5 is not None and md5.digest() != expected_md5:
                raise CRC32_MISMATCH.error("Content-MD5 mismatch")
            etag = md5.hexdigest()
            annotations: dict[str, Any] = {
                "etag": etag,
                "sha1s": qetag.to_hex(hasher.digests()),
                "putTime": int(time.time()),
            }
            if number == 1:
                annotations["head"] = base64.b64encode(bytes(head.data)).decode()
            await service.annotate(pid, annotations)
        except BaseException:
            with contextlib.suppress(Exception):
                await service.terminate(pid)
            raise
    await sessions.note_part(service, session.id, number)
    return json_response({"etag": etag, "md5": etag})


async def list_parts(request: web.Request) -> web.Response:
    call = Call.of(request)
    token, bucket, key = _authorize(call)
    session = await _session(call, token, bucket, key)
    query = request.query
    limit = parse_count(query.get("max-parts", "1000") or "1000", "max-parts", 1, 1000)
    marker_text = query.get("part-number-marker") or query.get("part-number_marker") or "0"
    marker = parse_count(marker_text, "part-number-marker", 0, sessions.MAX_PART_NUMBER)
    found = await sessions.parts(call.service, session, marker, limit)
    truncated = len(found) == limit and found[-1][0] < int(session.extra.get("maxPart", 0))
    assert session.expires_at is not None
    return json_response(
        {
            "uploadId": session.id,
            "expireAt": int(session.expires_at),
            "partNumberMarker": found[-1][0] if truncated else 0,
            "parts": [
                {
                    "size": record.offset,
                    "etag": record.extra["etag"],
                    "partNumber": number,
                    "putTime": record.extra.get("putTime", int(record.updated_at)),
                }
                for number, record in found
            ],
        }
    )


def _string_map(value: Any, prefix: str, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BAD_REQUEST.error(f"invalid {what}")
    return {str(k): str(v) for k, v in value.items() if str(k).lower().startswith(prefix)}


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
    session = await _session(call, token, bucket, key)
    if (request.content_length or 0) > _MAX_COMPLETE_BODY:
        raise BAD_REQUEST.error("request body too large")
    listed, body = _parse_complete(await body_read(request, request.read()))
    service = call.service
    async with service.lock(f"qiniu-complete:{session.id}"):
        session = await _session(call, token, bucket, key)
        records: list[UploadRecord] = []
        for number, etag in listed:
            try:
                record = await service.get(sessions.part_id(session.id, number))
            except (core.UploadNotFound, core.UploadGone):
                raise BAD_REQUEST.error(f"part {number} is not uploaded") from None
            if record.status is not Status.COMPLETE or record.extra.get("etag") != etag:
                raise BAD_REQUEST.error(f"part {number} does not match its etag")
            records.append(record)
        sizes = [r.offset for r in records]
        if any(size < MIN_PART_SIZE for size in sizes[:-1]):
            raise BAD_REQUEST.error("every part but the last must be at least 1 MiB")
        pieces = [qetag.Piece(r.offset, qetag.from_hex(r.extra.get("sha1s", []))) for r in records]
        ids = [r.id for r in records]
        head_text = records[0].extra.get("head") if listed[0][0] == 1 else None

        async def head() -> bytes:
            return base64.b64decode(head_text) if head_text else b""

        metadata = _string_map(body.get("metadata"), "x-qn-meta-", "metadata")

        async def store(final_key: str, extra: dict[str, Any], meta: ObjectMeta) -> None:
            await store_streams(call, bucket, ids, final_key, metadata, extra, meta)
            await sessions.end(service, session.id)

        async def discard() -> None:
            await discard_streams(call, ids)
            await sessions.end(service, session.id)

        new = NewFile(
            bucket=bucket,
            size=sum(sizes),
            etag=qetag.of_pieces(pieces, multipart=True),
            layout=sizes,
            client_key=session.key,
            fname=body.get("fname") if isinstance(body.get("fname"), str) else None,
            client_mime=body.get("mimeType") if isinstance(body.get("mimeType"), str) else None,
            custom=_string_map(body.get("customVars"), "x:", "customVars"),
            metadata=metadata,
            head=head,
        )
        return await place(call, token, new, store, discard)


async def abort(request: web.Request) -> web.Response:
    call = Call.of(request)
    token, bucket, key = _authorize(call)
    session = await _session(call, token, bucket, key)
    await sessions.end(call.service, session.id)
    highest = min(int(session.extra.get("maxPart", 0)), sessions.MAX_PART_NUMBER)
    for number in range(1, highest + 1):
        pid = sessions.part_id(session.id, number)
        if await call.service.find(pid) is not None:
            with contextlib.suppress(core.UploadError):
                await call.service.terminate(pid)
    return json_response({})
