"""The expiry sweeper: deletes the data of expired uploads, then their
tombstones. On several instances only the holder of the ``sweeper`` lock
sweeps in a given round."""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.core.errors import Locked, UploadError
from gateway.core.service import UploadService

log = logging.getLogger(__name__)


async def sweep_once(service: UploadService) -> int:
    """One pass; returns how many records it handled."""
    handled = 0
    try:
        async with service.locks.hold("sweeper", timeout=0.1):
            for _round in range(50):  # bounded: stuck records wait for the next pass
                ids = await service.state.expired(time.time(), limit=100)
                if not ids:
                    break
                progress = 0
                for upload_id in ids:
                    try:
                        await service.expire(upload_id)
                        progress += 1
                    except Locked:
                        continue  # busy: a request is using it, so it is not idle
                    except UploadError as exc:
                        log.warning("expiring %s failed: %s", upload_id, exc)
                handled += progress
                if progress == 0:
                    break
    except Locked:
        pass  # another instance is sweeping
    return handled


async def run_sweeper(service: UploadService, interval: float) -> None:
    while True:
        try:
            n = await sweep_once(service)
            if n:
                log.info("sweeper handled %d expired uploads", n)
        except asyncio.CancelledError:
            raise
        except UploadError as exc:  # state store or backend down: try next round
            log.warning("sweeper pass skipped: %s", exc)
        except Exception:
            log.exception("sweeper pass failed")
        await asyncio.sleep(interval)
