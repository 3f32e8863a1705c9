"""What every tus handler needs: the service, the config, URLs, the body."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from gateway import http_trailers
from gateway.access.credentials import Grant
from gateway.access.gate import AccessGate
from gateway.access.placement import KeyByEtag
from gateway.config import GatewayConfig
from gateway.core import (
    BadRequest,
    Checksum,
    RecordCheck,
    TrailerChecksum,
    UploadRecord,
    UploadService,
    object_content_type,
)
from gateway.protocols.tus.headers import OBJECT_URL_HEADER
from gateway.urls import base_url

#: record extra: the size limit a pre-create hook set
SIZE_LIMIT = "hook:sizeLimit"


@dataclass
class TusContext:
    request: web.Request
    service: UploadService
    config: GatewayConfig
    gate: AccessGate
    #: the request's verified credential, if it carries one
    grant: Grant | None = field(default=None)
    #: a size limit a pre-create hook set for the upload being created
    size_limit: int | None = None
    #: the upload being created may not replace an object (the policy's
    #: ``insertOnly``, or a scope that does not name its key)
    insert_only: bool = False
    #: its key names its content (a saveKey with ``$(etag)``): decided when
    #: it finishes, from these texts joined by its qetag
    key_by_etag: KeyByEtag | None = None
    #: whether this request may touch the upload it addresses (raises "no
    #: such upload" if not): the ``check`` of the handler's core call
    admit: RecordCheck | None = None
    #: the upload a request on an upload URL addresses, as admitted
    record: UploadRecord | None = None

    @property
    def bucket(self) -> str:
        return self.config.tus.bucket

    @property
    def instant_upload(self) -> bool:
        """Does the tus bucket offer instant upload (``instant-upload``)?"""
        bucket = self.config.buckets.get(self.bucket)
        return bucket is not None and bucket.instant_upload != "off"

    @property
    def base(self) -> str:
        return base_url(self.request, self.config.server)

    def upload_url(self, upload_id: str) -> str:
        return f"{self.base}{self.config.tus.path}{upload_id}"

    def id_from_url(self, url: str) -> str | None:
        """The upload id in an absolute or relative upload URL, if it is ours."""
        path = url
        if "://" in url:
            rest = url.split("://", 1)[1]
            path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        path = path.split("?", 1)[0]
        prefix = self.config.tus.path
        if not path.startswith(prefix):
            return None
        upload_id = path[len(prefix) :]
        return upload_id if upload_id and "/" not in upload_id else None

    async def add_object_url(self, headers: dict[str, str], record: UploadRecord) -> None:
        if record.key is not None:
            headers[OBJECT_URL_HEADER] = await self.service.object_url(
                record.bucket, record.key, self.base, object_content_type(record)
            )


def request_checksum(request: web.Request) -> Checksum | None:
    """The body's checksum: the ``Upload-Checksum`` header, or the trailer of
    that name when the request announces it (``Trailer: Upload-Checksum``)."""
    header = request.headers.get("Upload-Checksum")
    if header:
        return Checksum.parse(header)
    announced = {t.strip().lower() for t in request.headers.get("Trailer", "").split(",")}
    if "upload-checksum" not in announced:
        return None
    if not http_trailers.available():
        raise BadRequest("checksum trailers are not supported by this server")

    def read() -> str | None:
        trailers = http_trailers.trailers_of(request)
        return trailers.get("Upload-Checksum") if trailers else None

    return TrailerChecksum(read)
