"""The IETF resumable-upload protocol (draft-ietf-httpbis-resumable-upload,
newest rules): the tus client's loop with its own headers.

Requests carry no ``Upload-Draft-Interop-Version``, so the server answers by
its newest rules and sends no ``104`` (aiohttp's client does not read
interim responses); creation is a request without content, then appends
with ``Upload-Complete``. The protocol has no concatenation, so
``--parallel`` sends one stream."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from .files import LocalFile
from .tus import TusClient, encode_metadata


class IetfClient(TusClient):
    NAME = "ietf"
    PROTOCOL_HEADERS: Mapping[str, str] = {}
    APPEND_OK = (200, 201, 204)
    NO_CONCAT = "IETF resumable uploads have no concatenation: uploading each file as one stream"

    async def extensions(self, name: str) -> set[str]:
        return set()

    async def _create(
        self, file: LocalFile, length: int, partial: bool, digest: bytes | None = None
    ) -> tuple[str, tuple[int, Mapping[str, str]]]:
        headers = self._headers(
            **{
                "Upload-Complete": "?1" if length == 0 else "?0",
                "Upload-Length": str(length),
                "Content-Type": file.content_type,
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.name, safe='')}",
            }
        )
        if self.ctx.settings.metadata:
            headers["Upload-Metadata"] = encode_metadata(self.ctx.settings.metadata)
        url, _ = await self._post(headers, file.name, "create")
        return url, (0, {})

    def _append_headers(self, offset: int, stop: int, length: int) -> dict[str, str]:
        return {
            "Upload-Offset": str(offset),
            "Upload-Complete": "?1" if stop == length else "?0",
            "Content-Type": "application/partial-upload",
            "Content-Length": str(stop - offset),
        }
