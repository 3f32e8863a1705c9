"""HTTP to Swift with aiohttp's client: authentication (tempauth v1, Keystone
v3), token reuse and refresh, URL quoting, and the one place where transport
failures become ``backends.errors`` (``BackendUnavailable``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from backends.errors import BackendUnavailable
from backends.swift.config import SwiftConfig
from backends.telemetry import NO_TELEMETRY, BackendTelemetry
from backends.urls import key_path

#: what a request can fail with before Swift answers (timeouts are OSErrors)
TRANSPORT_ERRORS = (aiohttp.ClientError, OSError)
#: refresh a token this long before it expires
_TOKEN_MARGIN = 60.0


@dataclass(frozen=True)
class Credentials:
    storage_url: str
    token: str
    #: wall-clock expiry, when the auth service told it
    expires: float | None = None

    def fresh(self) -> bool:
        return self.expires is None or time.time() < self.expires - _TOKEN_MARGIN


class StreamBody:
    """A streamed request body that knows whether it has been read. It is sent
    with ``Expect: 100-continue``: Swift checks the token before asking for the
    body, so a refused token can be renewed and the same body sent again."""

    def __init__(self, chunks: AsyncGenerator[bytes, None]) -> None:
        self._chunks = chunks
        self.started = False

    def __aiter__(self) -> StreamBody:
        return self

    async def __anext__(self) -> bytes:
        self.started = True
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        with contextlib.suppress(RuntimeError):  # still running: being cancelled
            await self._chunks.aclose()


class AuthRejected(Exception):
    """The auth service refused the credentials or gave no usable endpoint."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def etag_of(headers: Mapping[str, str]) -> str:
    return headers.get("Etag", "").strip('"')


async def tempauth(http: aiohttp.ClientSession, cfg: SwiftConfig) -> Credentials:
    headers = {"X-Auth-User": cfg.user, "X-Auth-Key": cfg.key.get_secret_value()}
    async with http.get(cfg.auth_url, headers=headers) as resp:
        await resp.read()
        if resp.status in (401, 403):
            raise AuthRejected(f"{cfg.auth_url} refused user {cfg.user!r} ({resp.status})")
        if resp.status >= 300:
            raise _unavailable(f"auth at {cfg.auth_url} answered {resp.status}", cfg)
        url, token = resp.headers.get("X-Storage-Url"), resp.headers.get("X-Auth-Token")
        if not url or not token:
            raise AuthRejected(f"{cfg.auth_url} gave no X-Storage-Url / X-Auth-Token")
        life = resp.headers.get("X-Auth-Token-Expires", "")
        expires = time.time() + float(life) if life.isdigit() else None
        return Credentials(cfg.storage_url or url.rstrip("/"), token, expires)


def _keystone_request(cfg: SwiftConfig) -> dict[str, Any]:
    user: dict[str, Any] = {"password": cfg.key.get_secret_value()}
    if cfg.user_id:
        user["id"] = cfg.user_id
    else:
        user["name"] = cfg.user
        user["domain"] = (
            {"id": cfg.user_domain_id} if cfg.user_domain_id else {"name": cfg.user_domain_name}
        )
    project: dict[str, Any]
    if cfg.project_id:
        project = {"id": cfg.project_id}
    else:
        domain = (
            {"id": cfg.project_domain_id}
            if cfg.project_domain_id
            else {"name": cfg.project_domain_name}
        )
        project = {"name": cfg.project_name, "domain": domain}
    return {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": project},
        }
    }


def _tokens_url(auth_url: str) -> str:
    if auth_url.endswith("/auth/tokens"):
        return auth_url
    if auth_url.endswith("/v3"):
        return auth_url + "/auth/tokens"
    return auth_url + "/v3/auth/tokens"


def object_store_url(catalog: list[dict[str, Any]], interface: str, region: str) -> str | None:
    """The object-store endpoint of a Keystone v3 catalog, or None."""
    for service in catalog:
        if service.get("type") != "object-store":
            continue
        for ep in service.get("endpoints", []):
            if ep.get("interface") != interface:
                continue
            if region and region not in (ep.get("region"), ep.get("region_id")):
                continue
            url = ep.get("url")
            if isinstance(url, str) and url:
                return url.rstrip("/")
    return None


async def keystone_v3(http: aiohttp.ClientSession, cfg: SwiftConfig) -> Credentials:
    url = _tokens_url(cfg.auth_url)
    async with http.post(url, json=_keystone_request(cfg)) as resp:
        body = await resp.read()
        if resp.status in (401, 403, 404):
            raise AuthRejected(
                f"Keystone at {url} refused user {cfg.user or cfg.user_id!r} "
                f"for project {cfg.project_name or cfg.project_id!r} ({resp.status})"
            )
        if resp.status >= 300:
            raise _unavailable(f"Keystone at {url} answered {resp.status}", cfg)
        token = resp.headers.get("X-Subject-Token")
        try:
            data = json.loads(body)["token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthRejected(f"Keystone at {url} sent no token document") from exc
    if not token:
        raise AuthRejected(f"Keystone at {url} sent no X-Subject-Token")
    expires: float | None = None
    with contextlib.suppress(KeyError, TypeError, ValueError):
        expires = datetime.fromisoformat(str(data["expires_at"])).timestamp()
    storage = cfg.storage_url or object_store_url(
        data.get("catalog") or [], cfg.interface, cfg.region_name
    )
    if not storage:
        where = f" in region {cfg.region_name!r}" if cfg.region_name else ""
        raise AuthRejected(
            f"Keystone's catalog has no {cfg.interface} object-store endpoint{where}; "
            "set storage_url"
        )
    return Credentials(storage, token, expires)


def _replayable(data: Any) -> bool:
    return not (isinstance(data, StreamBody) and data.started)


def _unavailable(message: str, cfg: SwiftConfig) -> BackendUnavailable:
    return BackendUnavailable(f"swift: {message}", retry_after=cfg.retry_after)


class SwiftClient:
    """One aiohttp session and one token, shared by every request of a backend."""

    def __init__(self, cfg: SwiftConfig, telemetry: BackendTelemetry | None = None) -> None:
        self.cfg = cfg
        self.telemetry = telemetry or NO_TELEMETRY.bound("swift")
        self._http: aiohttp.ClientSession | None = None
        self._creds: Credentials | None = None
        self._auth_lock = asyncio.Lock()

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.cfg.max_connections),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=self.cfg.connect_timeout,
                    sock_read=self.cfg.read_timeout,
                ),
                auto_decompress=False,
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def unavailable(self, message: str) -> BackendUnavailable:
        return _unavailable(message, self.cfg)

    # -- auth ------------------------------------------------------------------
    async def credentials(self, stale: str | None = None) -> Credentials:
        """A usable token; a new one if the current one is ``stale`` or expiring.
        Raises ``AuthRejected`` or ``BackendUnavailable``."""
        creds = self._creds
        if creds is not None and creds.token != stale and creds.fresh():
            return creds
        async with self._auth_lock:
            creds = self._creds
            if creds is None or creds.token == stale or not creds.fresh():
                auth = tempauth if self.cfg.auth_version == 1 else keystone_v3
                try:
                    creds = await auth(self.http, self.cfg)
                except TRANSPORT_ERRORS as exc:
                    raise self.unavailable(f"auth at {self.cfg.auth_url}: {exc!r}") from exc
                self._creds = creds
            return creds

    async def cluster_info(self) -> dict[str, Any]:
        """The proxy's ``/info`` document (limits of SLO, tempurl, …), or {} if
        the cluster does not publish it."""
        creds = await self.credentials()
        root = URL(creds.storage_url).origin()
        try:
            async with self.http.get(root / "info") as resp:
                if resp.status != 200:
                    return {}
                info = await resp.json(content_type=None)
        except (*TRANSPORT_ERRORS, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    # -- addressing ----------------------------------------------------------
    def url(
        self,
        storage_url: str,
        container: str | None = None,
        name: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> URL:
        text = storage_url
        if container is not None:
            text += "/" + quote(container, safe="")
            if name is not None:
                text += "/" + key_path(name)
        if query:
            text += "?" + urlencode(query)
        return URL(text, encoded=True)

    def describe(self, container: str | None, name: str | None) -> str:
        return "/".join(p for p in (container, name) if p is not None) or "account"

    # -- requests ------------------------------------------------------------
    async def call(
        self,
        method: str,
        container: str | None = None,
        name: str | None = None,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        timeout: float | None = None,
        ok: Collection[int] = (),
    ) -> Reply:
        """A request with a small body, its whole answer read. A 401 re-authenticates
        once; 5xx, timeouts and connection failures raise ``BackendUnavailable``;
        any status outside 2xx and ``ok`` too."""
        async with self.request(
            method, container, name, query=query, headers=headers, data=data, timeout=timeout
        ) as resp:
            try:
                body = await resp.read()
            except TRANSPORT_ERRORS as exc:
                what = self.describe(container, name)
                raise self.unavailable(f"{method} {what}: {exc!r}") from exc
            reply = Reply(resp.status, resp.headers, body)
        if not (200 <= reply.status < 300 or reply.status in ok):
            what = self.describe(container, name)
            raise self.unavailable(f"{method} {what} answered {reply.status}: {body[:200]!r}")
        return reply

    def operation(
        self, method: str, container: str | None, name: str | None, query: Mapping[str, str] | None
    ) -> str:
        """The telemetry name of a request: ``put_segment``, ``put_manifest``,
        ``get_object``, ``head_container``, …"""
        if name is None:
            thing = "container" if container else "account"
        elif container == self.cfg.segments:
            thing = "segment"
        elif query and "multipart-manifest" in query:
            thing = "manifest"
        else:
            thing = "object"
        return f"{method.lower()}_{thing}"

    @contextlib.asynccontextmanager
    async def request(
        self,
        method: str,
        container: str | None = None,
        name: str | None = None,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        timeout: float | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """``_request``, timed and reported to the backend's telemetry."""
        with self.telemetry.timed(self.operation(method, container, name, query)):
            attempts = self._attempts(method, container, name, query, headers, data, timeout)
            async with attempts as resp:
                yield resp

    @contextlib.asynccontextmanager
    async def _attempts(
        self, method: str, container: str | None, name: str | None,
        query: Mapping[str, str] | None, headers: Mapping[str, str] | None, data: Any,
        timeout: float | None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:  # fmt: skip
        """The response, body unread. 401 → re-auth and retry once (when ``data``
        can be sent again: bytes, None, or a ``StreamBody`` not read yet).
        5xx / 408 / transport failures → ``BackendUnavailable``; other statuses
        are the caller's."""
        what = self.describe(container, name)
        stale: str | None = None
        for attempt in (1, 2):
            try:
                creds = await self.credentials(stale)
            except AuthRejected as exc:
                raise self.unavailable(f"re-authentication failed: {exc}") from exc
            all_headers = {"X-Auth-Token": creds.token, **(headers or {})}
            url = self.url(creds.storage_url, container, name, query)
            kwargs: dict[str, Any] = {"headers": all_headers, "data": data}
            if isinstance(data, StreamBody):
                kwargs["expect100"] = True
            if timeout is not None:
                kwargs["timeout"] = aiohttp.ClientTimeout(
                    total=None, sock_connect=self.cfg.connect_timeout, sock_read=timeout
                )
            responded = False
            try:
                async with self.http.request(method, url, **kwargs) as resp:
                    responded = True
                    if resp.status == 401:
                        stale = creds.token
                        if attempt == 1 and _replayable(data):
                            continue
                        if self._creds is not None and self._creds.token == stale:
                            self._creds = None  # the next request authenticates anew
                        raise self.unavailable(f"{method} {what}: token refused (401)")
                    if resp.status >= 500 or resp.status in (408, 499):
                        text = await resp.text(errors="replace")
                        raise self.unavailable(
                            f"{method} {what} answered {resp.status}: {text[:200]}"
                        )
                    yield resp
                    return
            except aiohttp.ServerDisconnectedError as exc:
                # a pooled connection the server had closed (e.g. a restarted proxy)
                if attempt == 1 and _replayable(data) and not responded:
                    self.telemetry.warn(
                        "stale-connection",
                        "%s %s: %r; retrying on a new connection",
                        method,
                        what,
                        exc,
                    )
                    continue
                raise self.unavailable(f"{method} {what}: {exc!r}") from exc
            except TRANSPORT_ERRORS as exc:
                raise self.unavailable(f"{method} {what}: {exc!r}") from exc
