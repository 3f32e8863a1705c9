"""The memory budget's waiting rules (gateway/core/budget.py): new work
waits briefly then is refused; work under way is never starved by new work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from gateway.core.budget import Budget, BudgetExhausted, request_scope


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 10))  # type: ignore[arg-type]


async def _in_scope(budget: Budget, sizes: list[int], log: list[str], name: str) -> None:
    """One request: acquire each size in turn (holding them), as a backend
    filling parts does."""
    with request_scope():
        for size in sizes:
            await budget.acquire(size)
            log.append(f"{name}:{size}")


def test_new_work_waits_briefly_then_is_refused() -> None:
    async def main() -> None:
        budget = Budget(100, wait=0.2)
        counted: list[str] = []
        budget.on_refused = counted.append
        await budget.acquire(100)
        started = time.monotonic()
        with request_scope(), pytest.raises(BudgetExhausted) as refused:
            await budget.acquire(1)
        assert 0.15 < time.monotonic() - started < 2.0
        assert refused.value.retry_after > 0
        assert budget.used == 100  # the refused request holds nothing
        assert counted == ["new"]

    run(main)


def test_work_under_way_goes_before_new_work() -> None:
    async def main() -> None:
        budget = Budget(100, wait=5.0)
        log: list[str] = []
        await budget.acquire(100)  # everything in use
        # a request under way (it got budget before) asks for its next part
        ongoing_started = asyncio.Event()

        async def ongoing() -> None:
            with request_scope():
                await budget.acquire(0)  # admitted: it holds (held) budget
                ongoing_started.set()
                await budget.acquire(60)
                log.append("ongoing")

        task_ongoing = asyncio.create_task(ongoing())
        await ongoing_started.wait()
        await asyncio.sleep(0)
        # new requests arrive after it; one is small enough to fit first
        newcomers = [
            asyncio.create_task(_in_scope(budget, [size], log, f"new{size}")) for size in (50, 10)
        ]
        await asyncio.sleep(0.05)
        budget.release(100)
        await asyncio.wait_for(task_ongoing, 2)
        await asyncio.sleep(0.05)
        # first come first served behind the continuing request: new50 fits
        # (60+50 > 100 does not), so nothing new may overtake it
        assert log == ["ongoing"]
        budget.release(60)
        await asyncio.gather(*newcomers)
        assert log == ["ongoing", "new50:50", "new10:10"]
        assert budget.used == 60

    run(main)


def test_a_continuing_request_waits_past_the_new_requests_bound() -> None:
    async def main() -> None:
        budget = Budget(100, wait=0.1, wait_under_way=5.0)
        log: list[str] = []
        with request_scope():
            await budget.acquire(100)  # admitted
            waiter = asyncio.create_task(budget.acquire(100))  # same request, next part
            await asyncio.sleep(0.3)  # past ``wait``: a new request would have been refused
            assert not waiter.done()
            budget.release(100)
            await asyncio.wait_for(waiter, 1)
            log.append("got it")
        assert log == ["got it"]

    run(main)


def test_a_continuing_request_is_refused_after_its_own_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        budget = Budget(100, wait=0.05, wait_under_way=0.3)
        refused: list[str] = []
        budget.on_refused = refused.append
        with request_scope():
            await budget.acquire(60)  # admitted: it holds budget
            await budget.acquire(40)
            started = time.monotonic()
            with pytest.raises(BudgetExhausted) as exc:
                await budget.acquire(50)  # nobody gives any back
            waited = time.monotonic() - started
        assert 0.25 < waited < 2.0, waited
        assert exc.value.retry_after > 0
        assert refused == ["under_way"]
        assert budget.used == 100  # what it held is its to release; the refusal took nothing
        budget.release(100)
        with request_scope():  # and the budget serves others at once
            await asyncio.wait_for(budget.acquire(100), 0.5)

    with caplog.at_level("WARNING", logger="gateway.core.budget"):
        run(main)
    assert "a request under way waited 0.3s for 50 bytes and is refused with 503" in caplog.text


def test_a_cancelled_waiter_takes_nothing_and_blocks_nobody() -> None:
    async def main() -> None:
        budget = Budget(100, wait=5.0)
        await budget.acquire(90)
        big = asyncio.create_task(budget.acquire(50))  # head of the line, does not fit
        await asyncio.sleep(0.01)
        small = asyncio.create_task(budget.acquire(10))  # fits, but must not overtake
        await asyncio.sleep(0.01)
        assert not small.done()
        big.cancel()
        await asyncio.wait_for(small, 1)  # the head left: the next one is served
        assert budget.used == 100

    run(main)


def test_larger_than_the_budget_gets_it_alone() -> None:
    async def main() -> None:
        budget = Budget(100, wait=1.0)
        await budget.acquire(1000)
        assert budget.used == 100
        budget.release(1000)
        assert budget.used == 0

    run(main)
