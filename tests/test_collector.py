"""``gateway serve`` collects the young generation less often and freezes
what start-up made (``gateway.cli._tune_collector``)."""

from __future__ import annotations

import asyncio
import gc

from aiohttp import web

from gateway import cli


def test_the_collector_is_tuned_and_start_up_frozen() -> None:
    app = web.Application()
    threshold = gc.get_threshold()
    try:
        cli._tune_collector(app)
        assert gc.get_threshold()[0] == cli.GC_YOUNG_THRESHOLD
        assert gc.get_freeze_count() == 0

        async def start() -> None:
            app.freeze()
            await app.on_startup.send(app)

        asyncio.run(start())
        assert gc.get_freeze_count() > 0  # start-up's objects, out of the collector's way
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
