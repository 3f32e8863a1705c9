"""Redis state store: upload records shared by several gateway instances.

Layout (``prefix`` defaults to ``ugw:``)::

    <prefix>upload:<id>        hash {version, data}: data is the record's JSON
    <prefix>expiry             sorted set: upload id scored by expires_at
                               (every unfinished upload is in it: ``unfinished``)
    <prefix>kv:<ns>:<key>      string: the small shared mappings (``kv_*``)
    <prefix>dobj:<[bucket,key]>           hash {data, upload, all, own}: a digest
                                          index entry and the sets it is in
    <prefix>dsum:<[bucket,sha,size]>      set of keys with that digest
    <prefix>dsum:<[bucket,sha,size,owner]>  the same, of one owner

``create``, ``save`` and the index's put / remove are Lua scripts, so a record and its expiry entry
change together, and ``save`` is a compare-and-set on ``version``. Use
Redis with persistence (AOF) if uploads must survive a Redis restart.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from gateway.core.errors import UploadExists
from gateway.core.records import Status, UploadRecord
from gateway.core.redis_conn import DEFAULT_PREFIX, connect, guard
from gateway.core.state.base import Cursor, IndexedObject, StateStore

# KEYS: record, expiry index. ARGV: id, version, data, expires_at ("" = none).
# Idempotent: re-sending the same create (a retried command) succeeds.
_CREATE = """
local data = redis.call('HGET', KEYS[1], 'data')
if data then return data == ARGV[3] and 1 or 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'data', ARGV[3])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1]) end
return 1
"""

# KEYS: record, expiry index. ARGV: id, old version, new version, data, expires_at.
_SAVE = """
local v = redis.call('HGET', KEYS[1], 'version')
if v ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[3], 'data', ARGV[4])
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
end
return 1
"""

# KEYS: entry, set of the digest, set of the digest and owner. ARGV: key, data, upload id.
_INDEX_PUT = """
local old = redis.call('HMGET', KEYS[1], 'all', 'own')
if old[1] then redis.call('SREM', old[1], ARGV[1]) end
if old[2] then redis.call('SREM', old[2], ARGV[1]) end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'upload', ARGV[3], 'all', KEYS[2], 'own', KEYS[3])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# KEYS: entry. ARGV: key, upload id ("" = whichever). The sets are named in the entry.
_INDEX_REMOVE = """
local f = redis.call('HMGET', KEYS[1], 'all', 'own', 'upload')
if not f[1] then return 0 end
if ARGV[2] ~= '' and f[3] ~= ARGV[2] then return 0 end
redis.call('SREM', f[1], ARGV[1])
redis.call('SREM', f[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
"""

_BATCH = 256  # expiry index entries read at once by ``unfinished``
_UNFINISHED = (Status.ACTIVE, Status.COMPLETE)


def _beyond(after: Cursor | None, score: float, member: bytes, newest_first: bool) -> bool:
    """Whether the index entry ``(score, member)`` comes after the cursor."""
    if after is None:
        return True
    entry, cursor = (score, member.decode()), (float(after[0]), after[1])
    return entry < cursor if newest_first else entry > cursor


def _score(expires_at: float | None) -> str:
    return "" if expires_at is None else repr(float(expires_at))


class RedisStateStore(StateStore):
    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self._redis: Any = None
        self._create: Any = None
        self._save: Any = None
        self._index_put: Any = None
        self._index_remove: Any = None

    # -- keys ------------------------------------------------------------------
    def _record_key(self, upload_id: str) -> str:
        return f"{self.prefix}upload:{upload_id}"

    @property
    def _expiry_key(self) -> str:
        return f"{self.prefix}expiry"

    def _kv_key(self, namespace: str, key: str) -> str:
        return f"{self.prefix}kv:{namespace}:{key}"

    def _entry_key(self, bucket: str, key: str) -> str:
        return f"{self.prefix}dobj:{json.dumps([bucket, key])}"

    def _digest_key(self, bucket: str, sha256: str, size: int, owner: str | None) -> str:
        names: list[str | int] = [bucket, sha256, size]
        if owner is not None:
            names.append(owner)
        return f"{self.prefix}dsum:{json.dumps(names)}"

    @property
    def redis(self) -> Any:
        assert self._redis is not None, "state store is not open"
        return self._redis

    # -- lifecycle ---------------------------------------------------------------
    async def open(self) -> None:
        """Connect lazily: an instance may start before Redis answers
        (``/readyz`` says so meanwhile)."""
        self._redis = connect(self.url)
        self._create = self._redis.register_script(_CREATE)
        self._save = self._redis.register_script(_SAVE)
        self._index_put = self._redis.register_script(_INDEX_PUT)
        self._index_remove = self._redis.register_script(_INDEX_REMOVE)

    async def close(self) -> None:
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()

    async def ping(self) -> None:
        async with guard("state store"):
            await self.redis.ping()

    # -- records -----------------------------------------------------------------
    async def create(self, record: UploadRecord) -> None:
        record.version = 1
        async with guard("state store"):
            created = await self._create(
                keys=[self._record_key(record.id), self._expiry_key],
                args=[record.id, record.version, record.to_json(), _score(record.expires_at)],
            )
        if not created:
            record.version = 0
            raise UploadExists(f"upload {record.id} exists")

    async def get(self, upload_id: str) -> UploadRecord | None:
        async with guard("state store"):
            data = await self.redis.hget(self._record_key(upload_id), "data")
        return UploadRecord.from_json(data) if data is not None else None

    async def get_many(self, upload_ids: list[str]) -> list[UploadRecord | None]:
        async with guard("state store"), self.redis.pipeline(transaction=False) as pipe:
            for upload_id in upload_ids:
                pipe.hget(self._record_key(upload_id), "data")
            datas = await pipe.execute()
        return [UploadRecord.from_json(d) if d is not None else None for d in datas]

    async def save(self, record: UploadRecord) -> bool:
        old = record.version
        record.version = old + 1
        try:
            async with guard("state store"):
                saved = await self._save(
                    keys=[self._record_key(record.id), self._expiry_key],
                    args=[
                        record.id,
                        old,
                        record.version,
                        record.to_json(),
                        _score(record.expires_at),
                    ],
                )
        except BaseException:
            record.version = old
            raise
        if not saved:
            record.version = old
        return bool(saved)

    async def delete(self, upload_id: str) -> None:
        async with guard("state store"), self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._record_key(upload_id))
            pipe.zrem(self._expiry_key, upload_id)
            await pipe.execute()

    async def expired(self, now: float, limit: int = 100) -> list[str]:
        async with guard("state store"):
            ids = await self.redis.zrangebyscore(
                self._expiry_key, "-inf", f"({now!r}", start=0, num=limit
            )
        return [i.decode() for i in ids]

    async def unfinished(
        self, limit: int = 100, *, after: Cursor | None = None, newest_first: bool = False
    ) -> list[UploadRecord]:
        # the expiry index also holds tombstones and finished objects with a
        # lifetime: read it in batches (from the cursor's score) and keep the
        # unfinished records. Equal scores are in member order, as ids sort.
        found: list[UploadRecord] = []
        seen: set[str] = set()  # a record saved meanwhile may move further on
        bound = "+inf" if newest_first else "-inf"
        if after is not None:
            bound = repr(float(after[0]))
        start = 0
        while len(found) < limit:
            async with guard("state store"):
                if newest_first:
                    batch = await self.redis.zrevrangebyscore(
                        self._expiry_key, bound, "-inf", start=start, num=_BATCH, withscores=True
                    )
                else:
                    batch = await self.redis.zrangebyscore(
                        self._expiry_key, bound, "+inf", start=start, num=_BATCH, withscores=True
                    )
                if not batch:
                    break
                ids = [m.decode() for m, score in batch if _beyond(after, score, m, newest_first)]
                async with self.redis.pipeline(transaction=False) as pipe:
                    for upload_id in ids:
                        pipe.hget(self._record_key(upload_id), "data")
                    datas = await pipe.execute()
            start += len(batch)
            for data in datas:
                if data is None:
                    continue  # deleted meanwhile
                record = UploadRecord.from_json(data)
                if record.status in _UNFINISHED and record.id not in seen and len(found) < limit:
                    seen.add(record.id)
                    found.append(record)
        return found

    # -- shared mappings -----------------------------------------------------------
    async def kv_get(self, namespace: str, key: str) -> str | None:
        async with guard("state store"):
            value = await self.redis.get(self._kv_key(namespace, key))
        return value.decode() if value is not None else None

    async def kv_set(self, namespace: str, key: str, value: str) -> None:
        async with guard("state store"):
            await self.redis.set(self._kv_key(namespace, key), value)

    async def kv_delete(self, namespace: str, key: str) -> None:
        async with guard("state store"):
            await self.redis.delete(self._kv_key(namespace, key))

    # -- the digest index ----------------------------------------------------------
    async def index_put(self, entry: IndexedObject) -> None:
        keys = [
            self._entry_key(entry.bucket, entry.key),
            self._digest_key(entry.bucket, entry.sha256, entry.size, None),
            self._digest_key(entry.bucket, entry.sha256, entry.size, entry.owner),
        ]
        async with guard("state store"):
            await self._index_put(
                keys=keys, args=[entry.key, json.dumps(asdict(entry)), entry.upload_id]
            )

    async def index_remove(self, bucket: str, key: str, upload_id: str | None = None) -> None:
        async with guard("state store"):
            await self._index_remove(
                keys=[self._entry_key(bucket, key)], args=[key, upload_id or ""]
            )

    async def index_get(self, bucket: str, key: str) -> IndexedObject | None:
        async with guard("state store"):
            data = await self.redis.hget(self._entry_key(bucket, key), "data")
        return IndexedObject(**json.loads(data)) if data is not None else None

    async def index_find(
        self, bucket: str, sha256: str, size: int, owner: str | None, limit: int = 8
    ) -> list[IndexedObject]:
        async with guard("state store"):
            keys = await self.redis.srandmember(
                self._digest_key(bucket, sha256, size, owner), limit
            )
            if not keys:
                return []
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hget(self._entry_key(bucket, key.decode()), "data")
                datas = await pipe.execute()
        found = [IndexedObject(**json.loads(d)) for d in datas if d is not None]
        return [e for e in found if e.sha256 == sha256 and e.size == size]
