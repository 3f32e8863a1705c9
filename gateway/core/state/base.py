"""The state-store interface (SQLite for one machine, Redis for many)."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from gateway.core.records import UploadRecord

#: where a page of ``unfinished`` ended: the last record's (expires_at, id)
Cursor = tuple[float, str]


@dataclass(frozen=True)
class IndexedObject:
    """One finished object in the digest index (instant upload): its SHA-256
    and size, who owns it, and the upload that made it."""

    bucket: str
    key: str
    sha256: str
    size: int
    #: ``gateway.core.instant.owner_key`` of the upload that made it
    owner: str
    upload_id: str


class StateStore(abc.ABC):
    """Upload records with compare-and-set saves, plus a namespaced KV.

    Implementations raise ``gateway.core.errors.ServiceUnavailable`` when the
    store cannot be reached."""

    async def open(self) -> None:
        """Connect / create schema."""

    async def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise ``ServiceUnavailable`` unless the store answers."""

    @abc.abstractmethod
    async def create(self, record: UploadRecord) -> None:
        """Insert a new record (``record.version`` is 0 → stored as 1).
        The same record again (a retried call) succeeds; another record
        with its id raises ``UploadExists`` and changes nothing."""

    @abc.abstractmethod
    async def get(self, upload_id: str) -> UploadRecord | None: ...

    @abc.abstractmethod
    async def get_many(self, upload_ids: list[str]) -> list[UploadRecord | None]:
        """The records of ``upload_ids`` in their order (None where there is
        none), in a few round trips however many ids there are."""

    @abc.abstractmethod
    async def save(self, record: UploadRecord) -> bool:
        """Store ``record`` if the stored version is still ``record.version``;
        on success bump ``record.version`` and return True. False means
        another writer got there first (nothing changed)."""

    @abc.abstractmethod
    async def delete(self, upload_id: str) -> None: ...

    @abc.abstractmethod
    async def expired(self, now: float, limit: int = 100) -> list[str]:
        """Ids whose ``expires_at`` is before ``now``."""

    @abc.abstractmethod
    async def unfinished(
        self, limit: int = 100, *, after: Cursor | None = None, newest_first: bool = False
    ) -> list[UploadRecord]:
        """Up to ``limit`` unfinished uploads (``ACTIVE`` or ``COMPLETE``:
        streams still receiving bytes, parts waiting to be assembled, open
        sessions) in the order of their ``(expires_at, id)``: soonest to
        expire (= longest idle) first, or with ``newest_first`` the most
        recently written first. ``after`` (a page's last ``(expires_at, id)``)
        continues past it: pages of any size walk every unfinished upload.
        Every one of them has an ``expires_at``, so both stores walk their
        expiry index."""

    # -- small shared mappings (Qiniu ids, FastDFS file ids, concat waiters) --
    @abc.abstractmethod
    async def kv_get(self, namespace: str, key: str) -> str | None: ...

    @abc.abstractmethod
    async def kv_set(self, namespace: str, key: str, value: str) -> None: ...

    @abc.abstractmethod
    async def kv_delete(self, namespace: str, key: str) -> None: ...

    # -- the digest index: sha-256 + size -> finished objects (instant upload) --
    @abc.abstractmethod
    async def index_put(self, entry: IndexedObject) -> None:
        """Index ``entry``, replacing whatever was indexed at its bucket and key."""

    @abc.abstractmethod
    async def index_remove(self, bucket: str, key: str, upload_id: str | None = None) -> None:
        """Drop the entry of ``bucket/key``; with ``upload_id``, only if that
        upload made it (a newer object at the key keeps its entry)."""

    @abc.abstractmethod
    async def index_get(self, bucket: str, key: str) -> IndexedObject | None:
        """The entry of ``bucket/key``, if any."""

    @abc.abstractmethod
    async def index_find(
        self, bucket: str, sha256: str, size: int, owner: str | None, limit: int = 8
    ) -> list[IndexedObject]:
        """Up to ``limit`` entries of ``bucket`` with this digest and size, of
        ``owner`` only (None: of anyone). The query names the owner, so its
        cost does not depend on what other owners hold."""
