"""The S3 calls the backend makes, over aiobotocore, with SDK errors
translated into ``backends.errors`` right here (the only module that sees
botocore exceptions).

* a missing object / upload / part → ``NotFound``
* connection failures, timeouts, 5xx, throttling → ``BackendUnavailable``
* anything else → ``BackendError`` naming the S3 error code
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import AsyncExitStack
from importlib import metadata
from typing import Any, Protocol

import aiobotocore
import aiohttp
import aiohttp.payload
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from aiohttp.abc import AbstractStreamWriter
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from backends.base import ObjectInfo
from backends.crc import crc32
from backends.errors import BackendConfigError, BackendError, BackendUnavailable, Exists, NotFound
from backends.s3 import observe
from backends.s3.config import S3Config
from backends.telemetry import BackendTelemetry

log = logging.getLogger("backends.s3")

#: how long start-up waits for a bucket it created to be served (``Store.served``)
NEW_BUCKET_WAIT = 15.0

_NOT_FOUND = {"NoSuchKey", "NoSuchUpload", "NotFound", "404", "InvalidPart"}
_UNAVAILABLE = {
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "OperationAborted",
    "503",
    "500",
}


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


#: what the store's logs see
_USER_AGENT = (
    f"upload-gateway/{_package_version('upload-gateway')} aiobotocore/{aiobotocore.__version__}"
)
_HASH_INLINE = 256 * 1024  # MD5 smaller bodies in the loop, larger in a thread
_READ_CHUNK = 1024 * 1024


def error_code(exc: ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return str(error.get("Code", status)), status


def s3_code(exc: BackendError) -> str:
    """The S3 error code behind a translated error ("" if none)."""
    cause = exc.__cause__
    return error_code(cause)[0] if isinstance(cause, ClientError) else ""


def translate(exc: BaseException, what: str) -> BackendError:
    """The ``backends.errors`` equivalent of an SDK or transport failure."""
    if isinstance(exc, ClientError):
        code, status = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or code
        text = f"S3 {what}: {code}: {message}"
        if code in _NOT_FOUND or status == 404:
            return NotFound(text)
        if code == "NotImplemented" or status == 501:
            return BackendError(text)  # a refusal of the request's form, not an outage
        if code in _UNAVAILABLE or status >= 500:
            return BackendUnavailable(text)
        return BackendError(text)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return BackendConfigError(f"S3 {what}: {exc}")
    if isinstance(exc, HTTPClientError | ConnectionError | aiohttp.ClientError | OSError):
        return BackendUnavailable(f"S3 {what}: the store did not answer: {exc}")
    return BackendError(f"S3 {what}: {exc}")


@contextlib.contextmanager
def s3_errors(what: str) -> Iterator[None]:
    try:
        yield
    except (BotoCoreError, ClientError, aiohttp.ClientError, OSError) as exc:  # OSError ⊃ timeouts
        raise translate(exc, what) from exc


def crc32_b64(crc: int) -> str:
    """A CRC32 as S3 writes it (base64 of its 4 big-endian bytes)."""
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


#: a request body as the bytes arrived: never joined into one object
Chunks = Sequence[bytes | memoryview]


def _crc32(chunks: Chunks) -> int:
    crc = 0
    for chunk in chunks:
        crc = crc32(chunk, crc)
    return crc


def md5_digest(chunks: Chunks) -> bytes:
    md5 = hashlib.md5()
    for chunk in chunks:
        md5.update(chunk)
    return md5.digest()


def _size(chunks: Chunks) -> int:
    return sum(len(c) for c in chunks)


def crc32_of(chunks: Chunks) -> str:
    """The CRC32 of a body, as S3 writes it (in the loop: 1 MiB takes ~20 µs)."""
    return crc32_b64(_crc32(chunks))


class TrailedBody(Protocol):
    """A forwarded part body (``backends.s3.parts.ForwardedBody``)."""

    @property
    def wire_length(self) -> int: ...

    @property
    def length(self) -> int: ...

    @property
    def trailer(self) -> bool: ...


def _aws_chunked(request: Any, **_: Any) -> None:
    """before-sign of UploadPart and PutObject: a forwarded body that ends with its CRC32
    as a trailer goes as one aws-chunked chunk (exact Content-Length, no
    chunked transfer encoding), ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``."""
    body = request.data
    if not getattr(body, "trailer", False):
        return
    request.headers["Content-Encoding"] = "aws-chunked"
    request.headers["X-Amz-Decoded-Content-Length"] = str(body.length)
    request.headers["X-Amz-Trailer"] = "x-amz-checksum-crc32"
    request.context["checksum"] = {
        "request_algorithm": {"in": "trailer", "algorithm": "crc32", "name": "x-amz-checksum-crc32"}
    }


async def content_md5(chunks: Chunks, known: bytes | None = None) -> str:
    if known is not None:
        digest = known
    elif _size(chunks) <= _HASH_INLINE:
        digest = md5_digest(chunks)
    else:  # hashlib releases the GIL on large buffers
        digest = await asyncio.to_thread(md5_digest, chunks)
    return base64.b64encode(digest).decode()


_SLICE = 256 * 1024


class PacedBody(aiohttp.payload.Payload):
    """A buffered request body, its chunks as they arrived, sent 256 KiB at a
    time with each slice drained before the next. Joined and given as bytes,
    it would be held twice while sent: once joined, and once more in the
    transport's buffer, which copies what the kernel does not take at once
    (Python 3.11); ``BytesIO`` is no better (the HTTP client copies it)."""

    _value: Chunks

    def __init__(self, chunks: Chunks) -> None:
        super().__init__(chunks)
        self._size = self._length = _size(chunks)

    def __len__(self) -> int:  # botocore's Content-Length
        return self._length

    def read(self, amount: int = -1) -> bytes:
        """Only for botocore's type check: the bytes go out through ``write``."""
        raise RuntimeError("a paced body is written by the HTTP client, not read")

    def seek(self, offset: int, whence: int = 0) -> int:
        """botocore rewinds a body before a retry: each write starts at byte 0."""
        return 0

    def tell(self) -> int:
        return 0

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return b"".join(self._value).decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        left = self._length if content_length is None else content_length
        for chunk in self._value:
            view = memoryview(chunk)[:left]
            for start in range(0, len(view), _SLICE):
                await writer.write(view[start : start + _SLICE])
            left -= len(view)
            if left <= 0:
                return


class Store:
    """One bucket through one aiobotocore client."""

    def __init__(
        self,
        config: S3Config,
        telemetry: BackendTelemetry | None = None,
        session: AioSession | None = None,
    ) -> None:
        self.config = config
        self.telemetry = telemetry
        #: a second Store given the session creates its client in milliseconds
        #: (the SDK's service model is loaded once per session: ~1 s)
        self.session = session or get_session()
        self.bucket = config.bucket
        self._stack = AsyncExitStack()
        self._client: Any = None
        #: the algorithm new multipart uploads declare (and whole objects
        #: carry), None for Content-MD5; set from ``multipart_checksum`` and
        #: the start-up probe (``backends.s3.integrity``)
        self.checksum: str | None = None if config.multipart_checksum == "none" else "CRC32"
        #: forwarded parts of uploads that declared a checksum may carry it in
        #: an aws-chunked trailer (else such parts are buffered, sent once)
        self.trailers = True
        #: the store copies parts server-side (UploadPartCopy)
        self.part_copy = True

    @property
    def client(self) -> Any:
        if self._client is None:
            raise BackendError("the S3 backend is not started")
        return self._client

    async def open(self) -> None:
        c = self.config
        s3_options: dict[str, Any] = {"addressing_style": c.addressing_style}
        if not c.payload_signing:
            s3_options["payload_signing_enabled"] = False
        boto_config = AioConfig(
            # a fixed string: the store's logs name the gateway, and botocore
            # no longer rebuilds its user agent from a dozen parts on every
            # request (0.05–0.1 ms of the ~1.4 ms of CPU a call costs here)
            user_agent=_USER_AGENT,
            region_name=c.region,
            signature_version="s3v4",
            connect_timeout=c.connect_timeout,
            read_timeout=c.read_timeout,
            retries={"max_attempts": c.max_attempts, "mode": "standard"},
            max_pool_connections=c.max_pool_connections,
            s3=s3_options,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        creator = self.session.create_client(
            "s3",
            endpoint_url=c.endpoint_url,
            aws_access_key_id=c.access_key,
            aws_secret_access_key=c.secret_key,
            aws_session_token=c.session_token,
            config=boto_config,
        )
        with s3_errors("client"):
            self._client = await self._stack.enter_async_context(creator)
        self._client.meta.events.register("before-sign.s3.UploadPart", _aws_chunked)
        self._client.meta.events.register("before-sign.s3.PutObject", _aws_chunked)
        if self.telemetry is not None:
            observe.watch(self._client.meta.events, self.telemetry)

    async def close(self) -> None:
        self._client = None
        await self._stack.aclose()

    # -- bucket ----------------------------------------------------------------
    async def check_bucket(self, create: bool) -> None:
        """Raise ``BackendConfigError`` unless the bucket exists and is ours."""
        where = f"bucket {self.bucket!r} at {self.config.endpoint_url or 'AWS'}"
        try:
            await self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            code, status = error_code(exc)
            if status in (401, 403):
                raise BackendConfigError(
                    f"S3 {where}: access denied ({code}); check access_key / secret_key "
                    "and the permissions listed in backends/s3's documentation"
                ) from exc
            if status != 404:
                raise translate(exc, "HeadBucket") from exc
        except (BotoCoreError, aiohttp.ClientError, OSError) as exc:
            raise translate(exc, f"HeadBucket {where}") from exc
        if not create:
            raise BackendConfigError(
                f"S3 {where} does not exist; create it or set create_bucket: true"
            )
        with s3_errors("CreateBucket"):
            try:
                await self.client.create_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if error_code(exc)[0] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        log.info("s3: created %s", where)
        waited = await self.served(NEW_BUCKET_WAIT)
        if waited:
            log.warning("s3: %s was created, yet answered NoSuchBucket for %.1f s", where, waited)

    async def served(self, limit: float) -> float:
        """Wait until multipart requests find the bucket, at most ``limit``
        seconds; how long it took (0: at once). Some stores answer
        NoSuchBucket for a moment after creating one (Swift 2.30's s3api
        under load, from its cached container info)."""
        loop = asyncio.get_running_loop()
        started, delay, missed = loop.time(), 0.05, False
        while True:
            try:
                with s3_errors("ListMultipartUploads"):
                    await self.client.list_multipart_uploads(Bucket=self.bucket, MaxUploads=1)
                return loop.time() - started if missed else 0.0
            except NotFound:
                if loop.time() - started + delay > limit:
                    raise
            missed = True
            await asyncio.sleep(delay)
            delay = min(2 * delay, 1.0)

    async def ping(self) -> None:
        with s3_errors("HeadBucket"):
            await self.client.head_bucket(Bucket=self.bucket)

    async def call(self, operation: str, **params: Any) -> Any:
        """Any S3 operation on the bucket (snake_case name), errors translated."""
        with s3_errors(operation):
            return await getattr(self.client, operation)(Bucket=self.bucket, **params)

    # -- multipart uploads ----------------------------------------------------
    async def create_multipart(
        self,
        key: str,
        content_type: str | None,
        checksum: str | None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """A new multipart upload declaring ``checksum`` (``self.checksum``
        when it was created): its parts must then be sent with their CRC32
        (``checksum`` of the upload calls)."""
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        if metadata:
            extra["Metadata"] = metadata
        if checksum is not None:
            extra["ChecksumAlgorithm"] = checksum
        with s3_errors("CreateMultipartUpload"):
            resp = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)
        return str(resp["UploadId"])

    async def upload_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        data: Chunks,
        md5: bytes | None = None,
        checksum: str | None = None,
    ) -> str:
        """Upload part ``number``; ``md5`` is the data's digest if already
        known; ``checksum`` its CRC32 (base64) for uploads that declared it."""
        # a CRC32 the store verifies makes an MD5 redundant
        extra = {"ChecksumCRC32": checksum} if checksum else await self._md5(data, md5)
        with s3_errors(f"UploadPart {number}"):
            resp = await self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                Body=self._body(data), **extra,
            )  # fmt: skip
        return str(resp["ETag"])

    def _body(self, chunks: Chunks) -> bytes | PacedBody:
        if self.config.payload_signing or not _size(chunks):
            # a signed payload is hashed by botocore, which needs the bytes
            return b"".join(chunks)
        return PacedBody(chunks)

    @property
    def can_forward(self) -> bool:
        """Parts may be sent while their bytes arrive (needs unsigned payloads)."""
        return self.config.forward_parts and not self.config.payload_signing

    def forwards(self, checksum: bool) -> bool:
        """Parts of an upload (that declared a checksum, or not) are forwarded."""
        return self.can_forward and (self.trailers or not checksum)

    async def upload_part_streaming(
        self, key: str, upload_id: str, number: int, body: TrailedBody
    ) -> str:
        """Upload part ``number`` from an async iterable of ``body.length``
        bytes (no Content-MD5), their CRC32 in a trailer if ``body.trailer``
        (else the caller compares the ETag with the bytes' MD5)."""
        with s3_errors(f"UploadPart {number}"):
            resp = await self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                Body=body, ContentLength=body.wire_length,
            )  # fmt: skip
        return str(resp["ETag"])

    async def put_streaming(self, key: str, body: TrailedBody) -> str:
        """The object ``key`` from an async iterable of ``body.length`` bytes,
        their CRC32 in a trailer (no metadata, no type: a temporary object)."""
        with s3_errors("PutObject"):
            resp = await self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentLength=body.wire_length
            )
        return str(resp.get("ETag", ""))

    async def upload_part_copy(
        self, key: str, upload_id: str, number: int, source: str, first: int, last: int | None
    ) -> tuple[str, str]:
        """Part ``number`` = bytes ``[first, last]`` of ``source`` (all if
        last is None); its ETag and the CRC32 the store reports ("" if none:
        AWS computes it for uploads that declared CRC32)."""
        extra: dict[str, str] = {}
        if last is not None:
            extra["CopySourceRange"] = f"bytes={first}-{last}"
        with s3_errors(f"UploadPartCopy {number}"):
            resp = await self.client.upload_part_copy(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": source}, **extra,
            )  # fmt: skip
        result = resp["CopyPartResult"]
        return str(result["ETag"]), str(result.get("ChecksumCRC32") or "")

    async def complete(
        self,
        key: str,
        upload_id: str,
        etags: list[str],
        checksums: list[str] | None = None,
        numbers: list[int] | None = None,
        if_absent: bool = False,
    ) -> None:
        """Complete with the parts' ETags and, for an upload that declared
        CRC32, their checksums (where known); the parts are numbered 1, 2, …
        unless ``numbers`` (ascending) says otherwise. With ``if_absent``,
        only if the key holds no object (``If-None-Match: *``): else
        ``Exists``, and the upload stays open (abort it)."""
        parts: list[dict[str, Any]] = [
            {"PartNumber": n, "ETag": e}
            for n, e in zip(numbers or range(1, len(etags) + 1), etags, strict=True)
        ]
        for part, checksum in zip(parts, checksums or [], strict=False):
            if checksum:
                part["ChecksumCRC32"] = checksum
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            with s3_errors("CompleteMultipartUpload"):
                await self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id,
                    MultipartUpload={"Parts": parts}, **extra,
                )  # fmt: skip
        except BackendError as exc:
            if if_absent and s3_code(exc) in ("PreconditionFailed", "412"):
                raise Exists(f"{key} holds an object") from exc
            raise

    async def upload_exists(self, key: str, upload_id: str) -> bool:
        try:
            with s3_errors("ListParts"):
                await self.client.list_parts(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MaxParts=1
                )
        except NotFound:
            return False
        return True

    async def abort(self, key: str, upload_id: str) -> None:
        """Abort; an upload already gone is not an error."""
        with contextlib.suppress(NotFound), s3_errors("AbortMultipartUpload"):
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )

    # -- objects ----------------------------------------------------------------
    async def put(
        self,
        key: str,
        data: Chunks,
        md5: bytes | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> str:
        """The object ``key`` from ``data``; its ETag. With ``if_absent``,
        only if the key holds none (``If-None-Match: *``): else ``Exists``."""
        # as for parts: a CRC32 the store verifies, cheaper than an MD5
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}
        if self.checksum:
            extra["ChecksumCRC32"] = crc32_of(data)
        else:
            extra.update(await self._md5(data, md5))
        if content_type:
            extra["ContentType"] = content_type
        if metadata:
            extra["Metadata"] = metadata
        try:
            with s3_errors("PutObject"):
                resp = await self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=self._body(data), **extra
                )
        except BackendError as exc:
            if if_absent and s3_code(exc) in ("PreconditionFailed", "412"):
                raise Exists(f"{key} holds an object") from exc
            raise
        return str(resp.get("ETag", ""))

    async def get_bytes(self, key: str, expected: int) -> bytes:
        """The whole (small) object; ``InvalidState``-worthy mismatches raise NotFound."""
        with s3_errors(f"GetObject {key}"):
            resp = await self.client.get_object(Bucket=self.bucket, Key=key)
            async with resp["Body"] as body:
                data: bytes = await body.read()
        if len(data) != expected:
            raise NotFound(f"S3 object {key} has {len(data)} bytes, expected {expected}")
        return data

    async def read(self, key: str, start: int, end: int | None) -> AsyncGenerator[bytes, None]:
        """Bytes ``[start, end)``; ``NotFound`` if the object is missing."""
        if end is not None and end <= start:
            if await self.head(key) is None:
                raise NotFound(f"S3 object {key} does not exist")
            return
        extra: dict[str, str] = {}
        if start > 0 or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            with s3_errors(f"GetObject {key}"):
                resp = await self.client.get_object(Bucket=self.bucket, Key=key, **extra)
        except BackendError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and error_code(cause)[1] == 416:
                return  # the range starts at or past the end (e.g. an empty object)
            raise
        async with resp["Body"] as body:
            while True:
                with s3_errors(f"GetObject {key}"):
                    chunk = await body.read(_READ_CHUNK)
                if not chunk:
                    return
                yield chunk

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            with s3_errors("HeadObject"):
                resp = await self.client.head_object(Bucket=self.bucket, Key=key)
        except NotFound:
            return None
        return ObjectInfo(
            key=key,
            size=int(resp["ContentLength"]),
            content_type=resp.get("ContentType"),
            etag=str(resp.get("ETag", "")).strip('"') or None,
            version=f"{resp.get('ETag', '')}@{resp.get('LastModified', '')}",
            sha256=(resp.get("Metadata") or {}).get("sha256"),
        )

    async def copy(
        self,
        source: str,
        key: str,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Server-side copy of a whole object (up to ``max_part_size``); a
        type or metadata given replaces the source's."""
        extra: dict[str, Any] = {}
        if content_type or metadata:
            extra["MetadataDirective"] = "REPLACE"
        if content_type:
            extra["ContentType"] = content_type
        if metadata:
            extra["Metadata"] = metadata
        with s3_errors("CopyObject"):
            await self.client.copy_object(
                Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": source},
                **extra,
            )  # fmt: skip

    async def delete(self, key: str) -> None:
        with contextlib.suppress(NotFound), s3_errors("DeleteObject"):
            await self.client.delete_object(Bucket=self.bucket, Key=key)

    async def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        with s3_errors("ListObjectsV2"):
            paginator = self.client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(str(o["Key"]) for o in page.get("Contents", []))
        return keys

    async def presign(self, key: str, ttl: int, disposition: str | None = None) -> str:
        """A presigned GET; with ``disposition``, the store answers it with
        that ``Content-Disposition`` (``response-content-disposition``)."""
        params = {"Bucket": self.bucket, "Key": key}
        if disposition is not None:
            params["ResponseContentDisposition"] = disposition
        with s3_errors("presign"):
            url: str = await self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=ttl
            )
        return url

    async def _md5(self, data: Chunks, known: bytes | None) -> dict[str, str]:
        if not self.config.content_md5:
            return {}
        return {"ContentMD5": await content_md5(data, known)}
