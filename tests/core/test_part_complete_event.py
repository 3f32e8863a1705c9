"""The core event ``PART_COMPLETE`` (``gateway/core/events.py``): how a part
that completes wakes the assemblies waiting for it, without ``uploads``
knowing ``assembly``. On a real local store and both state stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.core.errors import ServiceUnavailable
from gateway.core.events import PART_COMPLETE, Events
from gateway.core.records import Kind, Status, UploadRecord
from gateway.core.service import UploadService
from tests.core.services import record, run


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_notify_awaits_each_handler_of_that_event_in_order() -> None:
    seen: list[tuple[str, str]] = []
    listened: list[str] = []

    async def main() -> None:
        events = Events(hooks=[])
        events.listeners.append(lambda event, r: listened.append(event))

        async def first(r: UploadRecord) -> None:
            await asyncio.sleep(0.01)  # the second waits for the first
            seen.append(("first", r.id))

        async def second(r: UploadRecord) -> None:
            seen.append(("second", r.id))

        events.subscribe(PART_COMPLETE, first)
        events.subscribe(PART_COMPLETE, second)
        events.subscribe("something-else", second)
        await events.notify(PART_COMPLETE, record("p1"))
        await events.notify("nobody-listens", record("p2"))

    asyncio.run(main())
    assert seen == [("first", "p1"), ("second", "p1")]
    assert listened == []  # a core event is no webhook and no listener's business


def test_a_handler_error_reaches_the_caller() -> None:
    async def main() -> None:
        events = Events(hooks=[])

        async def down(r: UploadRecord) -> None:
            raise ServiceUnavailable("state store down")

        events.subscribe(PART_COMPLETE, down)
        with pytest.raises(ServiceUnavailable):
            await events.notify(PART_COMPLETE, record("p1"))

    asyncio.run(main())


def test_the_last_part_completing_assembles_the_waiting_final(
    tmp_path: Path, state: dict[str, Any]
) -> None:
    async def body(service: UploadService) -> None:
        raised: list[tuple[str, Status]] = []

        async def watch(part: UploadRecord) -> None:
            raised.append((part.id, part.status))

        service.events.subscribe(PART_COMPLETE, watch)
        a = await service.create(
            protocol="tus", bucket="default", key=None, length=3, kind=Kind.PART
        )
        b = await service.create(
            protocol="tus", bucket="default", key=None, length=4, kind=Kind.PART
        )
        await service.write(a.id, 0, _body(b"abc"))
        assert raised == [(a.id, Status.COMPLETE)]
        final = await service.create_assembly(
            protocol="tus", bucket="default", key="joined", parts=[a.id, b.id]
        )
        assert final.status is Status.ACTIVE  # b is not complete yet

        await service.write(b.id, 0, _body(b"defg"))
        assert raised == [(a.id, Status.COMPLETE), (b.id, Status.COMPLETE)]
        # the assembly handler ran before the write returned: the object is there
        assert (await service.get(final.id)).status is Status.FINISHED
        assert b"".join([c async for c in service.read("default", "joined")]) == b"abcdefg"

        # an upload (not a part) that completes raises no PART_COMPLETE
        up = await service.create(protocol="tus", bucket="default", key="single", length=2)
        await service.write(up.id, 0, _body(b"hi"))
        assert [i for i, _ in raised] == [a.id, b.id]

    run(tmp_path, state, body)
