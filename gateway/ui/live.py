"""What the ops view shows besides the state store's records, gathered on
this instance: body bytes received per second (sampled each second, last
five minutes), the live bytes of uploads being received here, and recent
finishes. Finishes and each instance's bytes per second are also written to
the state store's KV (the series every 5 s), so that on a cluster the view
lists every instance's finishes and charts their throughput together."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import deque
from typing import Any

from backends.telemetry import warn_limited
from gateway.core.records import UploadRecord
from gateway.core.service import UploadService

log = logging.getLogger(__name__)

#: KV namespace and key of the shared list of recent finishes
KV_NAMESPACE = "ui-ops"
KV_FINISHED = "finished"
#: instance → when it last said it was there (JSON object)
KV_INSTANCES = "instances"
SAMPLE_SECONDS = 1.0
HISTORY = 300
#: samples between two writes of this instance's series; the cluster chart's bucket
PUBLISH_EVERY = 5
#: an instance silent this long is left out of the cluster chart
GONE_AFTER = 60.0


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
        count = 0
        while True:
            self.samples.append((time.time(), self.service.ledger.bytes_received()))
            count += 1
            if count % PUBLISH_EVERY == 0:
                await self._publish()
            await asyncio.sleep(SAMPLE_SECONDS)

    async def _publish(self) -> None:
        """This instance's series and presence in the KV, for the other instances' views."""
        kv = self.service.state
        me = self.service.ledger.instance
        try:
            await kv.kv_set(KV_NAMESPACE, f"throughput:{me}", json.dumps(self.received()))
            known = _decode_map(await kv.kv_get(KV_NAMESPACE, KV_INSTANCES))
            now = time.time()
            if now - known.get(me, 0.0) > GONE_AFTER / 4:
                known = {i: t for i, t in known.items() if now - t < 10 * GONE_AFTER}
                known[me] = now
                await kv.kv_set(KV_NAMESPACE, KV_INSTANCES, json.dumps(known))
        except Exception as exc:
            warn_limited(
                log, "ops-publish", "ops view: could not share this instance's throughput: %s", exc
            )

    async def cluster_throughput(self) -> tuple[list[list[float]], list[str]]:
        """The throughput of every instance seen in the last minute, summed in
        5-second buckets (others' series are up to 5 s old), and their names;
        alone, this instance's per second."""
        me = self.service.ledger.instance
        series = {me: self.received()}
        try:
            known = _decode_map(await self.service.state.kv_get(KV_NAMESPACE, KV_INSTANCES))
            now = time.time()
            for instance, seen in known.items():
                if instance != me and now - seen < GONE_AFTER:
                    raw = await self.service.state.kv_get(KV_NAMESPACE, f"throughput:{instance}")
                    series[instance] = [p for p in _decode_list(raw) if len(p) == 2]
        except Exception as exc:
            warn_limited(
                log, "ops-read", "ops view: could not read other instances' throughput: %s", exc
            )
        if len(series) == 1:
            return self.throughput(), [me]
        # bytes, not rates, are added up: sample intervals stretch on a busy machine
        buckets: dict[int, float] = {}
        for points in series.values():
            for t, received in points:
                b = int(float(t) // PUBLISH_EVERY)
                buckets[b] = buckets.get(b, 0.0) + float(received)
        summed = [
            [float((b + 1) * PUBLISH_EVERY), v / PUBLISH_EVERY] for b, v in sorted(buckets.items())
        ]
        return summed, sorted(series)

    def throughput(self) -> list[list[float]]:
        """[time, bytes/s] per sample interval, oldest first."""
        return [
            [t1, max(0, b1 - b0) / (t1 - t0)]
            for (t0, b0), (t1, b1) in itertools.pairwise(self.samples)
            if t1 > t0
        ]

    def received(self) -> list[list[float]]:
        """[time, bytes received since the sample before], oldest first."""
        return [[t1, max(0, b1 - b0)] for (_, b0), (t1, b1) in itertools.pairwise(self.samples)]

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
    return [e for e in _decode_list(text) if isinstance(e, dict)]


def _decode_list(text: str | None) -> list[Any]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _decode_map(text: str | None) -> dict[str, float]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, (int, float))}
