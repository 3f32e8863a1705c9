"""Resumable v1: ``mkblk`` / ``bput`` / ``mkfile``.

A block is a core stream (``Kind.PART``, length = block size). Its ctx
(``ctx.py``) names the stream and the offset reached; the ctx of a block's
last chunk also carries the block's SHA-1, so ``mkfile`` names the qetag
from the ctx list alone. The running SHA-1 of a block written over several
``bput`` requests lives in this process (``HasherCache``); on another
instance, or after a restart, it is rebuilt from the stored bytes
(``read_stream``); a ctx whose block is gone is answered ``701`` and the SDK
restarts the block.
"""

from __future__ import annotations

from aiohttp import web

from gateway import core
from gateway.access import qetag
from gateway.access.codec import b64decode_text, b64encode
from gateway.access.ownership import admits, grant_of, owner_of
from gateway.access.tokens import UploadToken
from gateway.content_types import SNIFF_BYTES
from gateway.core import Crc32, Kind, ObjectMeta, UploadRecord
from gateway.numbers import parse_count
from gateway.protocols.bodies import body_read, request_body

from . import pre_create
from .ctx import BlockContext
from .errors import BAD_REQUEST, INVALID_CTX
from .placing import NewFile, place
from .responses import json_response
from .runtime import Call
from .shared import custom_vars, user_metadata

_MAX_CTX_LIST = 16 * 1024 * 1024
V1 = "v1"


def _authorize(call: Call) -> tuple[UploadToken, str]:
    token = call.runtime.verify_header(call.request)
    return token, call.check_bucket(token.policy.bucket)


async def mkblk(request: web.Request) -> web.Response:
    call = Call.of(request)
    token, bucket = _authorize(call)
    size = parse_count(request.match_info["size"], "block size", 1, qetag.BLOCK_SIZE)
    # a token's first block asks the pre-create hooks (the later ones reuse the answer)
    approved = await pre_create.ask(call, token, key=None, metadata={}, step="v1", once=True)
    approved.check_size(size)
    record = await call.service.create(
        protocol="qiniu",
        bucket=bucket,
        key=None,
        length=size,
        kind=Kind.PART,
        # a ctx of this block works only with a token of the same scope and endUser
        extra={"qiniu": V1, **owner_of(grant_of(token)), **approved.as_extra()},
    )
    return await _write_chunk(call, bucket, record.id, 0, qetag.BlockHasher())


async def bput(request: web.Request) -> web.Response:
    call = Call.of(request)
    token, bucket = _authorize(call)
    ctx = call.runtime.signer.decode(request.match_info["ctx"])
    offset = parse_count(request.match_info["offset"], "offset")
    if ctx.bucket != bucket or ctx.offset != offset:
        raise INVALID_CTX.error()
    record = await _block(call, ctx, token)
    hasher = call.runtime.hashers.get(record.id, record.offset) or await _rehash(call, record)
    return await _write_chunk(call, bucket, record.id, offset, hasher)


async def _block(call: Call, ctx: BlockContext, token: UploadToken) -> UploadRecord:
    """The block a ctx names, if the ctx is still its latest and ``token``
    may use it (same scope and endUser as the block's); else 701."""
    try:
        record = await call.service.get(ctx.stream_id)
    except (core.UploadNotFound, core.UploadGone):
        raise INVALID_CTX.error() from None
    if (
        record.protocol != "qiniu"
        or not admits(grant_of(token), record)
        or record.kind is not Kind.PART
        or record.extra.get("qiniu") != V1
        or record.bucket != ctx.bucket
        or record.offset != ctx.offset
    ):
        raise INVALID_CTX.error()
    return record


async def _rehash(call: Call, record: UploadRecord) -> qetag.BlockHasher:
    """The block's running SHA-1, rebuilt from the bytes the store holds."""
    hasher = qetag.BlockHasher()
    try:
        async for chunk in call.service.read_stream(record.id, 0, record.offset):
            hasher.update(chunk)
    except (core.UploadNotFound, core.UploadGone):
        raise INVALID_CTX.error() from None
    if hasher.size != record.offset:
        raise INVALID_CTX.error()
    return hasher


async def _write_chunk(
    call: Call, bucket: str, stream_id: str, offset: int, hasher: qetag.BlockHasher
) -> web.Response:
    crc = Crc32()
    body = request_body(call.request)
    try:
        record = await call.service.write(
            stream_id,
            offset,
            body,
            hashers=[hasher, crc],
            content_length=call.request.content_length,
            require_complete_body=True,
        )
    except core.BadRequest:
        body.check()  # a body cut short by a silent client (408) or a malformed one
        raise
    except (core.UploadNotFound, core.UploadGone, core.OffsetMismatch):
        raise INVALID_CTX.error() from None
    except core.TooLarge:
        raise BAD_REQUEST.error("the chunk exceeds the block size") from None
    complete = record.length is not None and record.offset >= record.length
    if complete:
        call.runtime.hashers.drop(stream_id)
    else:
        call.runtime.hashers.put(stream_id, hasher)
    sha1 = hasher.current_block_sha1()
    expires = call.runtime.expiry(record.expires_at)
    ctx = call.runtime.signer.encode(
        BlockContext(stream_id, bucket, record.offset, expires, sha1 if complete else None)
    )
    return json_response(
        {
            "ctx": ctx,
            "checksum": b64encode(sha1),
            "crc32": crc.value,
            "offset": record.offset,
            "host": call.base_url,
            "expired_at": expires,
        }
    )


def parse_pairs(path: str) -> dict[str, str]:
    """``key/<b64>/fname/<b64>/x:foo/<b64>…`` in any order → decoded values."""
    segments = [s for s in path.split("/") if s]
    if len(segments) % 2:
        raise BAD_REQUEST.error("invalid mkfile parameters")
    pairs: dict[str, str] = {}
    for name, value in zip(segments[::2], segments[1::2], strict=True):
        pairs[name] = b64decode_text(value, name)
    return pairs


async def mkfile(request: web.Request) -> web.Response:
    call = Call.of(request)
    token, bucket = _authorize(call)
    size = parse_count(request.match_info["size"], "file size")
    params = parse_pairs(request.match_info.get("params", ""))
    if (request.content_length or 0) > _MAX_CTX_LIST:
        raise BAD_REQUEST.error("ctx list too long")
    text = (await body_read(request, request.read())).decode("ascii", errors="replace")
    contexts = [call.runtime.signer.decode(c) for c in text.split(",") if c.strip()]
    ids = [c.stream_id for c in contexts]
    if len(set(ids)) != len(ids):
        raise INVALID_CTX.error()
    records: list[UploadRecord] = []
    for ctx in contexts:
        record = await _block(call, ctx, token)
        if ctx.bucket != bucket or ctx.block_sha1 is None or record.offset != record.length:
            raise INVALID_CTX.error()
        records.append(record)
    if sum(r.offset for r in records) != size:
        raise BAD_REQUEST.error("the blocks do not add up to the file size")
    if records:  # what the hooks answered at the first mkblk
        approved = pre_create.Approved.of_extra(records[0].extra)
    else:  # an empty file: no mkblk asked them
        approved = await pre_create.ask(call, token, key=None, metadata={}, step="v1")
    approved.check_size(size)
    pieces = [
        qetag.Piece(r.offset, (c.block_sha1,))
        for r, c in zip(records, contexts, strict=True)
        if c.block_sha1
    ]
    etag = qetag.of_pieces(pieces) if pieces else qetag.of_bytes(b"")

    async def head() -> bytes:
        if not ids:
            return b""
        data = b""
        async for chunk in call.service.read_stream(ids[0], 0, SNIFF_BYTES):
            data += chunk
        return data

    metadata = approved.user_metadata(user_metadata(params))
    multipart = call.service.multipart

    async def store(key: str, extra: dict[str, object], meta: ObjectMeta) -> None:
        await multipart.assemble("qiniu", bucket, ids, key, metadata, dict(extra), meta)

    async def discard() -> None:
        await multipart.discard(ids)

    new = NewFile(
        bucket=bucket,
        size=size,
        etag=etag,
        client_key=params.get("key"),
        fname=params.get("fname"),
        client_mime=params.get("mimeType"),
        custom=custom_vars(params),
        metadata=metadata,
        head=head,
        hook_key=approved.key,
    )
    return await place(call, token, new, store, discard)
