"""Reading back: objects (stat, bytes, the URL a business service fetches)
and the bytes an unfinished stream holds so far."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from backends.base import ObjectInfo
from backends.urls import key_path
from gateway.access.keys import KeyPair
from gateway.access.signed_urls import sign_url
from gateway.content_types import is_inline, stored_type
from gateway.core import object_meta
from gateway.core.errors import UploadNotFound
from gateway.core.ledger import Ledger, backend_errors
from gateway.core.records import UploadRecord


class Reading:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def stat_object(self, bucket: str, key: str) -> ObjectInfo | None:
        b = self.ledger.bucket(bucket)
        with backend_errors():
            return await b.backend.stat(b.backend_key(key))

    async def read(
        self, bucket: str, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        b = self.ledger.bucket(bucket)
        with backend_errors(missing=UploadNotFound("no such object")):
            async for chunk in b.backend.read(b.backend_key(key), start, end):
                yield chunk

    async def read_stream(
        self, upload_id: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` a stream holds so far."""
        record = await self.ledger.get(upload_id)
        b = self.ledger.bucket(record.bucket)
        with backend_errors():
            async for chunk in b.backend.read_stream(self.ledger.stream(record), start, end):
                yield chunk

    async def object_url(
        self, bucket: str, key: str, base_url: str, content_type: str | None = None
    ) -> str:
        """The URL business services fetch the object from. A store's own URL
        asks for it as an attachment unless ``content_type`` (the object's,
        where known) is on the inline allow-list (``server.inline_types``)."""
        b = self.ledger.bucket(bucket)
        config = self.ledger.config
        inline = is_inline(stored_type(content_type), config.server.inline_types)
        with backend_errors():
            url = await b.backend.object_url(
                b.backend_key(key), int(config.uploads.url_ttl), inline=inline
            )
        if url:
            return url
        url = f"{base_url}/objects/{quote(bucket, safe='')}/{key_path(key)}"
        if config.buckets[bucket].private:
            # a private bucket's objects are read only with a signed URL
            pair = config.qiniu.keys[0]
            signer = KeyPair(pair.access_key, pair.secret_key)
            url = sign_url(url, signer, config.uploads.url_ttl)
        return url

    async def hook_url(self, record: UploadRecord) -> str | None:
        """The object URL a webhook payload carries."""
        if record.key is None:
            return None
        server = self.ledger.config.server
        base = server.public_url or f"http://{server.host}:{server.port}"
        return await self.object_url(
            record.bucket, record.key, base, object_meta.content_type(record)
        )
