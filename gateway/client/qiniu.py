"""Qiniu client: v2 multipart uploads (parts in parallel, resumable through
the upload id), a form upload for empty files.

The bucket (and the key, when the token pins one) come from the upload
token's put policy; the server is any Qiniu-compatible upload host."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .body import file_range
from .files import LocalFile
from .progress import FileProgress
from .retry import Gone, Transient, UploadError, retrying
from .session import Context, PartProgress, Result, all_of

DEFAULT_PART = 4 * 1024 * 1024
MIN_PART = 1024 * 1024
MAX_PARTS = 10_000


def token_scope(token: str) -> tuple[str, str | None]:
    """(bucket, key or None) of an upload token ``ak:sign:policy``."""
    try:
        encoded = token.split(":")[2]
        policy = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        bucket, _, key = str(policy["scope"]).partition(":")
    except (IndexError, KeyError, ValueError, binascii.Error, TypeError) as exc:
        raise UploadError("--token is not a Qiniu upload token (ak:sign:policy)") from exc
    return bucket, key or None


def _error(status: int, body: str, what: str) -> Exception:
    try:
        detail = str(json.loads(body).get("error", body))
    except (ValueError, AttributeError):
        detail = body.strip()[:200]
    message = f"{what}: HTTP {status} {detail}"
    if status == 612:
        return Gone(message)
    if status >= 500 and status != 579:
        return Transient(message)
    return UploadError(message)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


class QiniuClient:
    def __init__(self, ctx: Context, token: str, files: int) -> None:
        self.ctx = ctx
        self.token = token
        self.bucket, self.scope_key = token_scope(token)
        parts = urlsplit(ctx.settings.endpoint)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.files = files
        size = ctx.settings.chunk_size or DEFAULT_PART
        if size < MIN_PART:
            raise UploadError(f"--chunk-size: Qiniu parts are at least {MIN_PART} bytes")
        self.part_size = size

    def key_for(self, file: LocalFile) -> str:
        key = self.ctx.settings.key
        if key is not None:
            return key if self.files == 1 else key + file.name
        if self.scope_key is not None:
            return self.scope_key
        return file.name

    def _auth(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"UpToken {self.token}", **extra}

    async def upload(self, file: LocalFile, progress: FileProgress) -> Result:
        key = self.key_for(file)
        if file.size == 0:
            return await self._form(file, key)
        part_size = max(self.part_size, -(-file.size // MAX_PARTS))
        fp = file.fingerprint("qiniu", self.base, self.bucket, key, part_size)
        try:
            return await self._multipart(file, key, part_size, fp, progress)
        except Gone as exc:
            self.ctx.forget(fp)
            self.ctx.reporter.message(f"{file.name}: {exc}; starting a new upload")
            progress.set(0)
            return await self._multipart(file, key, part_size, fp, progress)

    def _retry(self, name: str, op: Any) -> Any:
        return retrying(op, self.ctx.settings.backoff, self.ctx.retry_note(name))

    async def _json(self, method: str, url: str, what: str, **kw: Any) -> Any:
        async with self.ctx.http.request(method, url, **kw) as r:
            body = await r.text()
            if r.status != 200:
                raise _error(r.status, body, what)
            return json.loads(body) if body else {}

    async def _multipart(
        self, file: LocalFile, key: str, part_size: int, fp: str, progress: FileProgress
    ) -> Result:
        uploads = f"{self.base}/buckets/{self.bucket}/objects/{_b64(key)}/uploads"
        entry = self.ctx.recall(fp) or {}
        upload_id: str | None = entry.get("upload_id")
        done: dict[int, str] = {}
        if upload_id:
            done = await self._listed(f"{uploads}/{upload_id}", file, part_size)
        else:
            answer = await self._retry(
                file.name,
                lambda: self._json("POST", uploads, f"{file.name}: init", headers=self._auth()),
            )
            upload_id = str(answer["uploadId"])
            self.ctx.remember(fp, {"name": file.name, "upload_id": upload_id})
        url = f"{uploads}/{upload_id}"
        count = -(-file.size // part_size)
        resumed = sum(min(part_size, file.size - (n - 1) * part_size) for n in done)
        progress.set(resumed)
        slots = asyncio.Semaphore(self.ctx.settings.parallel)

        async def put(n: int) -> None:
            start = (n - 1) * part_size
            end = min(file.size, start + part_size)
            share = PartProgress(progress)

            async def once() -> str:
                share.set(0)
                body = file_range(file.path, start, end, self.ctx.settings.limit, share.advance)
                headers = self._auth(
                    **{
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(end - start),
                    }
                )
                answer = await self._json(
                    "PUT", f"{url}/{n}", f"{file.name}: part {n}", data=body, headers=headers
                )
                return str(answer["etag"])

            async with slots:
                done[n] = await self._retry(file.name, once)

        await all_of([put(n) for n in range(1, count + 1) if n not in done])
        metadata = {f"x-qn-meta-{k}": v for k, v in self.ctx.settings.metadata.items()}
        payload = {
            "parts": [{"partNumber": n, "etag": done[n]} for n in sorted(done)],
            "fname": file.name.rsplit("/", 1)[-1],
            "mimeType": file.content_type,
            "metadata": metadata or None,
        }
        answer = await self._retry(
            file.name,
            lambda: self._json(
                "POST", url, f"{file.name}: complete", json=payload, headers=self._auth()
            ),
        )
        self.ctx.forget(fp)
        return self._result(file, answer, upload_id, resumed)

    async def _listed(self, url: str, file: LocalFile, part_size: int) -> dict[int, str]:
        """Parts the server holds with the size we would send (others are resent)."""
        done: dict[int, str] = {}
        marker = 0
        while True:
            page_url = f"{url}?max-parts=1000&part-number-marker={marker}"
            answer = await self._retry(
                file.name,
                lambda u=page_url: self._json("GET", u, f"{file.name}: list", headers=self._auth()),
            )
            for part in answer.get("parts") or []:
                n = int(part["partNumber"])
                want = min(part_size, file.size - (n - 1) * part_size)
                if int(part.get("size", -1)) == want:
                    done[n] = str(part["etag"])
            marker = int(answer.get("partNumberMarker") or 0)
            if not marker or not answer.get("parts"):
                return done

    async def _form(self, file: LocalFile, key: str) -> Result:
        async def post() -> Any:
            form = aiohttp.FormData()
            form.add_field("token", self.token)
            form.add_field("key", key)
            form.add_field(
                "file", b"", filename=file.name.rsplit("/", 1)[-1], content_type=file.content_type
            )
            return await self._json("POST", f"{self.base}/", f"{file.name}: form upload", data=form)

        return self._result(file, await self._retry(file.name, post), "", 0)

    def _result(self, file: LocalFile, answer: Any, upload: str, resumed: int) -> Result:
        key = answer.get("key") if isinstance(answer, dict) else None
        url = answer.get("url") if isinstance(answer, dict) else None
        return Result(
            file=file, url=str(url or key or ""), upload=upload, key=key, resumed_from=resumed
        )
