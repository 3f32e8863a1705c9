"""Form upload: ``POST /`` as ``multipart/form-data``.

The multipart body is parsed as it streams, whatever the field order. When
the token came before the file (Python, Node SDKs) a file of up to
``qiniu.form_buffer`` bytes is held in memory (from the memory budget) until
every field is in: then the put policy is applied (crc32, size, MIME, key,
insert-only, the pre-finish hook) and only an accepted file is written, once,
straight to its key (S3: one PutObject; no copy, nothing to delete). A larger
file whose key is known before its bytes (``placing.planned_key``) goes, where
the store writes objects in parts (S3), straight into an upload of its key
(``core.ObjectUpload``: one part buffered at a time), completed only once the
same checks passed and aborted otherwise — for a key that must be free, only
where the store makes it conditionally. Any other file (a key named by its
bytes, a store without parts, one sent before its token: qiniu-js) goes into
a core stream while it arrives — into the token's bucket, or the staging
bucket without a token — and becomes the object once checked; if a check
fails, the stored bytes are deleted. Nothing is held in memory beyond a chunk
on that path. How the file part is received: ``form_file.py``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import aiohttp
from aiohttp import web

from gateway import core
from gateway.access.tokens import UploadToken
from gateway.core import Kind, ObjectMeta
from gateway.numbers import parse_count

from . import pre_create
from .errors import BAD_REQUEST, CRC32_MISMATCH
from .form_file import FORM, StoredFile, receive_file
from .form_parts import FormPart, FormParts
from .placing import NewFile, place
from .pre_create import Approved
from .runtime import Call
from .shared import custom_vars, user_metadata

_MAX_FIELD = 64 * 1024
_MAX_FIELDS = 1000


async def _read_field(part: FormPart, name: str) -> str:
    data = bytearray()
    while chunk := await part.read_chunk():
        data += chunk
        if len(data) > _MAX_FIELD:
            raise BAD_REQUEST.error(f"form field {name!r} is too large")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BAD_REQUEST.error(f"form field {name!r} is not UTF-8") from None


async def upload(request: web.Request) -> web.Response:
    call = Call.of(request)
    # the raw header: aiohttp's ``content_type`` parses it with the email
    # package (~2 ms a request); ``multipart()`` parses the boundary anyway
    if (
        not request.headers.get(aiohttp.hdrs.CONTENT_TYPE, "")
        .lstrip()
        .lower()
        .startswith("multipart/")
    ):
        raise BAD_REQUEST.error("invalid multipart format")
    fields: dict[str, str] = {}
    stored: StoredFile | None = None
    early_token: UploadToken | None = None
    approved: Approved | None = None
    try:
        try:
            parts = FormParts(request)
            while (part := await parts.next()) is not None:
                if part.nested:
                    raise BAD_REQUEST.error("nested multipart is not supported")
                name = part.name
                if name == "file":
                    if stored is not None:
                        raise BAD_REQUEST.error("more than one file")
                    if "token" in fields:
                        early_token = call.runtime.verify(fields["token"])
                        approved = await _approve(call, early_token, fields)  # before the bytes
                    stored = await receive_file(call, part, early_token, approved, fields)
                elif name:
                    if len(fields) >= _MAX_FIELDS:
                        raise BAD_REQUEST.error("too many form fields")
                    fields[name] = await _read_field(part, name)
        except (ValueError, AssertionError, aiohttp.ClientPayloadError) as exc:
            raise BAD_REQUEST.error("invalid multipart format") from exc
        token = early_token or call.runtime.verify(fields.get("token"))
        if stored is None:
            raise BAD_REQUEST.error("file is missing")
        if approved is None:  # the file came before its token
            approved = await _approve(call, token, fields)
        return await _finish(call, token, fields, stored, approved)
    except BaseException:
        if stored is not None and stored.direct is not None:
            await stored.direct.abort()  # unless it became the object
        if stored is not None and stored.stream_id is not None and not stored.committed:
            with contextlib.suppress(Exception):
                await call.service.terminate(stored.stream_id)
        raise
    finally:
        if stored is not None and stored.held is not None:
            stored.held.release()


async def _approve(call: Call, token: UploadToken, fields: dict[str, str]) -> Approved:
    return await pre_create.ask(call, token, key=fields.get("key"), metadata=user_metadata(fields))


async def _finish(
    call: Call, token: UploadToken, fields: dict[str, str], stored: StoredFile, approved: Approved
) -> web.Response:
    bucket = call.check_bucket(approved.bucket or token.policy.bucket)
    approved.check_size(stored.size)
    if "crc32" in fields:
        expected = parse_count(fields["crc32"].strip(), "crc32", maximum=0xFFFFFFFF)
        if expected != stored.crc():
            raise CRC32_MISMATCH.error()
    metadata = approved.user_metadata(user_metadata(fields))

    async def head() -> bytes:
        return stored.head

    # a token that may not replace an object: the store's conditional write
    # (or completion) finds out whether one is there, where it can (no look
    # before it)
    if stored.direct is not None:
        if_absent = stored.direct.if_absent
    else:
        if_absent = (
            stored.held is not None
            and not token.policy.may_overwrite
            and call.service.creates_if_absent(bucket, stored.size)
        )

    async def store(key: str, extra: dict[str, Any], meta: ObjectMeta) -> None:
        if stored.direct is not None:  # checked: now made from the parts written
            await stored.direct.complete(key, metadata=metadata, extra=extra, meta=meta)
            return
        if stored.held is not None:  # checked: now written, once, on its key
            await call.service.put(
                protocol="qiniu",
                bucket=bucket,
                key=key,
                length=stored.size,
                body=stored.held.body(),
                metadata=metadata,
                extra=core.with_object_meta({"qiniu": FORM, **extra}, meta),
                if_absent=if_absent,
            )
            return
        part_id = stored.stream_id
        assert part_id is not None
        if not call.service.same_store(bucket, stored.bucket):
            part_id = await _relocate(call, stored, bucket)
        await call.service.commit_part(
            part_id, key, bucket=bucket, metadata=metadata, extra=extra, meta=meta
        )
        stored.committed = True

    async def discard() -> None:
        if stored.direct is not None:
            await stored.direct.abort()
        if stored.stream_id is None:
            return  # held bytes are released when the request ends
        with contextlib.suppress(core.UploadError):
            await call.service.terminate(stored.stream_id)

    new = NewFile(
        bucket=bucket,
        size=stored.size,
        etag=stored.etag,
        client_key=fields.get("key"),
        fname=fields.get("fname") or stored.filename,
        client_mime=stored.content_type,
        custom=custom_vars(fields),
        metadata=metadata,
        head=head,
        hook_key=approved.key,
        if_absent=if_absent,
        moment=stored.moment,
    )
    return await place(call, token, new, store, discard, accept=fields.get("accept"))


async def _relocate(call: Call, stored: StoredFile, bucket: str) -> str:
    """Copy a staged file into ``bucket`` on another backend (the rare case
    of a file sent before its token, for a bucket off the staging backend)."""
    assert stored.stream_id is not None
    record = await call.service.create(
        protocol="qiniu",
        bucket=bucket,
        key=None,
        length=stored.size,
        kind=Kind.PART,
        extra={"qiniu": FORM},
    )
    await call.service.write(
        record.id, 0, call.service.read_stream(stored.stream_id), require_complete_body=True
    )
    with contextlib.suppress(core.UploadError):
        await call.service.terminate(stored.stream_id)
    stored.stream_id, stored.bucket = record.id, bucket
    return record.id
