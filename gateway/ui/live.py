"""What the ops view shows besides the state store's records, gathered on
this instance: body bytes received per second (sampled each second, last
five minutes), the live bytes of uploads being received here, and recent
finishes — kept here and in the state store's KV, so every instance's
finishes are listed wherever the view is opened."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import deque
from typing import Any

from gateway.core.records import UploadRecord
from gateway.core.service import UploadService

log = logging.getLogger(__name__)

#: KV namespace and key of the shared list of recent finishes
KV_NAMESPACE = "ui-ops"
KV_FINISHED = "finished"
SAMPLE_SECONDS = 1.0
HISTORY = 300


class Live:
    def __init__(self, service: UploadService, recent: int) -> None:
        self.service = service
        self.recent = recent
        #: (time, bytes received so far) once a second
        self.samples: deque[tuple[float, int]] = deque(maxlen=HISTORY + 1)
        self.finished: deque[dict[str, Any]] = deque(maxlen=recent)
        self._seen: dict[str, tuple[float, int]] = {}
        self._writes: set[asyncio.Task[None]] = set()
        service.events.listeners.append(self._on_event)

    # -- throughput ------------------------------------------------------------------
    async def sample_forever(self) -> None:
        while True:
            self.samples.append((time.time(), self.service.ledger.bytes_received()))
            await asyncio.sleep(SAMPLE_SECONDS)

    def throughput(self) -> list[list[float]]:
        """[time, bytes/s] per sample interval, oldest first."""
        pairs = list(self.samples)
        return [
            [t1, max(0, b1 - b0) / (t1 - t0)]
            for (t0, b0), (t1, b1) in itertools.pairwise(pairs)
            if t1 > t0
        ]

    # -- uploads in progress ------------------------------------------------------------
    def live_bytes(self) -> dict[str, int]:
        """Upload id → bytes it holds counting the body being received here."""
        found: dict[str, int] = {}
        for upload_id, offset, body in self.service.ledger.receiving.values():
            found[upload_id] = max(found.get(upload_id, 0), offset + body.received)
        return found

    def rate(self, upload_id: str, now: float, held: int) -> float | None:
        """Bytes/s since this upload was last looked at (None the first time)."""
        before = self._seen.get(upload_id)
        if before is None or now - before[0] >= 1.0:
            self._seen[upload_id] = (now, held)
        if before is None or now <= before[0]:
            return None
        return max(0, held - before[1]) / (now - before[0])

    def forget_except(self, ids: set[str]) -> None:
        for gone in set(self._seen) - ids:
            del self._seen[gone]

    # -- recent finishes -------------------------------------------------------------------
    def _on_event(self, event: str, record: UploadRecord) -> None:
        if event != "post-finish" or record.key is None:
            return
        entry = {
            "id": record.id,
            "protocol": record.protocol,
            "bucket": record.bucket,
            "key": record.key,
            "size": record.offset if record.length is None else record.length,
            "finished_at": time.time(),
            "took": max(0.0, time.time() - record.created_at) if record.created_at else None,
            "instance": self.service.ledger.instance,
        }
        self.finished.appendleft(entry)
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to share
            task = asyncio.get_running_loop().create_task(self._share(entry))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _share(self, entry: dict[str, Any]) -> None:
        """Prepend to the shared list (read-modify-write: two instances
        finishing at the same moment may drop one of the two from it; each
        still lists its own)."""
        kv = self.service.state
        try:
            shared = _decode(await kv.kv_get(KV_NAMESPACE, KV_FINISHED))
            shared = [entry, *[e for e in shared if e.get("id") != entry["id"]]][: self.recent]
            await kv.kv_set(KV_NAMESPACE, KV_FINISHED, json.dumps(shared))
        except Exception as exc:
            log.warning("ops view: could not share a finished upload: %s", exc)

    async def recent_finishes(self) -> list[dict[str, Any]]:
        try:
            shared = _decode(await self.service.state.kv_get(KV_NAMESPACE, KV_FINISHED))
        except Exception as exc:
            log.warning("ops view: could not read the shared finishes: %s", exc)
            shared = []
        merged = {e["id"]: e for e in [*shared, *self.finished] if isinstance(e.get("id"), str)}
        ordered = sorted(merged.values(), key=lambda e: float(e.get("finished_at") or 0))
        return ordered[::-1][: self.recent]

    async def close(self) -> None:
        for task in list(self._writes):
            with contextlib.suppress(Exception):
                await task


def _decode(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []
