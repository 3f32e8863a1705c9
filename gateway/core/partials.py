"""Parts shared by assemblies (tus concatenation; ARCHITECTURE.md §2).

A part (a tus partial upload) may be listed by several assemblies (finals),
even several times by one. ``PartRefs`` keeps, per part, the ids of the
assemblies that list it (KV namespace ``CONCAT_WAIT``, under the lock
``lock_name(part)``): an assembly is added when it is created (refused if
the part is already gone) and dropped once it was assembled; the part's
storage is discarded only when the last one is dropped (or when it expires).
Adding and the last drop (with the discard) hold the same lock, so an
assembly can never be created on a part that is being discarded.

The sizes: an assembly's size is the sum over the parts it lists, a part
counted as often as it is listed, at its length (or, while its length is
deferred, at its offset). It must stay within the upload size limit when the
assembly is created and while its deferred parts grow (``room``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from gateway.config import GatewayConfig
from gateway.core.errors import TooLarge, UploadGone
from gateway.core.ledger import CONCAT_WAIT as NAMESPACE
from gateway.core.ledger import Bucket
from gateway.core.locks import LockManager
from gateway.core.records import Status, UploadRecord
from gateway.core.state.base import StateStore


def lock_name(part_id: str) -> str:
    return f"{NAMESPACE}:{part_id}"


def known_size(part: UploadRecord) -> int:
    """A part's size as far as known: its length, else what it holds so far."""
    return part.length if part.length is not None else part.offset


def max_total(config: GatewayConfig, bucket: Bucket) -> int | None:
    """The size no assembly in ``bucket`` may exceed: the smaller of
    ``server.max_upload_size`` and the store's object limit, if any."""
    store_limit = bucket.backend.limits.max_object_size
    bounds = [b for b in (config.server.max_upload_size, store_limit) if b]
    return min(bounds) if bounds else None


def too_large(limit: int) -> TooLarge:
    return TooLarge(f"the concatenated upload would exceed the maximum size of {limit} bytes")


class PartRefs:
    def __init__(self, state: StateStore, locks: LockManager) -> None:
        self.state = state
        self.locks = locks

    async def referrers(self, part_id: str) -> list[str]:
        raw = await self.state.kv_get(NAMESPACE, part_id)
        return list(json.loads(raw)) if raw else []

    async def add(self, part_id: str, assembly_id: str) -> None:
        """List ``assembly_id`` as using the part; ``UploadGone`` if the part
        was discarded or terminated meanwhile (e.g. by the assembly before)."""
        async with self.locks.hold(lock_name(part_id)):
            part = await self.state.get(part_id)
            if part is None or part.status not in (Status.ACTIVE, Status.COMPLETE):
                raise UploadGone(f"upload {part_id} is gone")
            ids = await self.referrers(part_id)
            if assembly_id not in ids:
                ids.append(assembly_id)
                await self.state.kv_set(NAMESPACE, part_id, json.dumps(ids))

    async def drop(self, part_id: str, assembly_id: str) -> bool:
        """Forget one user of the part (call it holding ``lock_name(part_id)``);
        True if nothing lists the part any more."""
        ids = [i for i in await self.referrers(part_id) if i != assembly_id]
        if ids:
            await self.state.kv_set(NAMESPACE, part_id, json.dumps(ids))
        else:
            await self.state.kv_delete(NAMESPACE, part_id)
        return not ids

    async def room(self, part: UploadRecord, limit: int | None) -> int | None:
        """How many more bytes a part of deferred length may take before an
        unassembled assembly listing it would exceed ``limit`` (None: no bound)."""
        if not limit or part.length is not None:
            return None
        room: int | None = None
        for assembly_id in await self.referrers(part.id):
            assembly = await self.state.get(assembly_id)
            if assembly is None or assembly.status is not Status.ACTIVE:
                continue
            sizes = await self._sizes(assembly.parts, part)
            total = sum(sizes[p] for p in assembly.parts)
            times = assembly.parts.count(part.id)
            if times:
                mine = max(0, (limit - total) // times)
                room = mine if room is None else min(room, mine)
        return room

    async def _sizes(self, part_ids: Iterable[str], current: UploadRecord) -> dict[str, int]:
        sizes = {current.id: known_size(current)}
        for part_id in set(part_ids) - {current.id}:
            other = await self.state.get(part_id)
            sizes[part_id] = known_size(other) if other is not None else 0
        return sizes
