"""``backends.telemetry``: what a backend reports, and the rate-limited warning."""

from __future__ import annotations

import asyncio
import logging

import pytest

from backends.errors import BackendUnavailable, NotFound
from backends.telemetry import (
    CANCELLED,
    ERROR,
    NO_TELEMETRY,
    NOT_FOUND,
    OK,
    RateLimiter,
    Telemetry,
    reason_of,
    warn_limited,
)


class Recording(Telemetry):
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []
        self.errors: list[tuple[str, str, str]] = []
        self.fallbacks: list[tuple[str, str, str]] = []

    def backend_request(self, backend: str, operation: str, seconds: float, outcome: str) -> None:
        assert seconds >= 0
        self.requests.append((backend, operation, outcome))

    def backend_error(self, backend: str, operation: str, reason: str) -> None:
        self.errors.append((backend, operation, reason))

    def backend_fallback(self, backend: str, operation: str, reason: str) -> None:
        self.fallbacks.append((backend, operation, reason))


def test_timed_records_outcome_and_error_reason() -> None:
    sink = Recording()
    t = sink.bound("s3main")

    async def main() -> None:
        with t.timed("upload_part"):
            await asyncio.sleep(0)
        with pytest.raises(BackendUnavailable), t.timed("complete"):
            raise BackendUnavailable("down")
        with pytest.raises(NotFound), t.timed("head_object"):
            raise NotFound("no such key")

        async def slow() -> None:
            with t.timed("put_segment"):
                await asyncio.sleep(10)

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert sink.requests == [
        ("s3main", "upload_part", OK),
        ("s3main", "complete", ERROR),
        ("s3main", "head_object", NOT_FOUND),
        ("s3main", "put_segment", CANCELLED),
    ]
    assert sink.errors == [("s3main", "complete", "unavailable")]


def test_reasons_are_bounded_names() -> None:
    class StoreSaidNo(Exception):
        pass

    tagged = RuntimeError("x")
    tagged.telemetry_reason = "http_503"  # type: ignore[attr-defined]
    assert reason_of(NotFound("k")) == "not_found"
    assert reason_of(TimeoutError()) == "timeout"
    assert reason_of(ConnectionResetError()) == "connection"
    assert reason_of(StoreSaidNo("key/with/secret")) == "store_said_no"
    assert reason_of(tagged) == "http_503"


def test_fallback_counts_every_time_and_warns_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Recording()
    t = sink.bound("ceph")
    with caplog.at_level(logging.WARNING, logger="backends.ceph"):
        for _ in range(3):
            t.fallback("upload_part", "streaming_refused", "re-sent buffered")
        t.fallback("upload_part", "other_reason")
    assert sink.fallbacks == [("ceph", "upload_part", "streaming_refused")] * 3 + [
        ("ceph", "upload_part", "other_reason")
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "backend ceph: upload_part fell back (streaming_refused): re-sent buffered",
        "backend ceph: upload_part fell back (other_reason)",
    ]


def test_rate_limiter_reports_what_it_held_back() -> None:
    limiter = RateLimiter(interval=60, max_causes=2)
    assert limiter.allow("a", now=0) == 0
    assert limiter.allow("a", now=1) is None
    assert limiter.allow("a", now=2) is None
    assert limiter.allow("a", now=61) == 2
    limiter.allow("b", now=62)
    limiter.allow("c", now=63)  # forgets "a", the longest unseen
    assert limiter.allow("a", now=64) == 0


def test_warn_limited_says_how_many_it_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.telemetry.suppressed")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        assert warn_limited(logger, "cause", "lock stolen from %s", "x")
        assert not warn_limited(logger, "cause", "lock stolen from %s", "y")
    assert [r.getMessage() for r in caplog.records] == ["lock stolen from x"]


def test_the_default_sink_ignores_everything() -> None:
    t = NO_TELEMETRY.bound("local")
    with t.timed("fsync"):
        pass
    t.error("fsync", "os_error")
    assert t.sink is NO_TELEMETRY
