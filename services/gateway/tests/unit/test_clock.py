"""The process-wide clock of the sockets' heartbeats and expiries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gateway.domain.clock import Clock

pytestmark = pytest.mark.unit


async def until(check: Callable[[], bool]) -> None:
    """Wait (up to 2 s) for ``check()``: a busy machine's timers run late, never early."""
    for _ in range(400):
        if check():
            return
        await asyncio.sleep(0.005)


async def test_callbacks_run_in_due_order_never_early_within_the_resolution() -> None:
    clock = Clock(resolution=0.01)
    loop = asyncio.get_running_loop()
    start = loop.time()
    ran: list[tuple[str, float]] = []
    for name, delay in (("late", 0.06), ("early", 0.02), ("middle", 0.04), ("now", 0.0)):
        clock.call_later(delay, lambda n=name: ran.append((n, loop.time() - start)))
    assert len(clock) == 4
    await until(lambda: len(ran) == 4)
    assert [n for n, _ in ran] == ["now", "early", "middle", "late"]
    delays = dict(ran)
    for name, delay in (("early", 0.02), ("middle", 0.04), ("late", 0.06)):
        assert delays[name] >= delay - 0.002  # never before its time (a timer's own slack)
    assert len(clock) == 0


async def test_a_cancelled_entry_never_runs_and_the_others_still_do() -> None:
    clock = Clock(resolution=0.01)
    ran: list[str] = []
    first = clock.call_later(0.02, lambda: ran.append("first"))
    clock.call_later(0.02, lambda: ran.append("second"))
    third = clock.call_later(0.05, lambda: ran.append("third"))
    clock.cancel(first)
    clock.cancel(third)
    clock.cancel(third)  # twice: nothing happens
    clock.call_later(0.08, lambda: ran.append("marker"))  # after the cancelled ones' time
    await until(lambda: "marker" in ran)
    assert ran == ["second", "marker"]
    clock.cancel(first)  # after its time: nothing happens


async def test_a_failing_callback_does_not_stop_the_others_nor_the_clock() -> None:
    clock = Clock(resolution=0.01)
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("boom")

    clock.call_later(0.01, boom)
    clock.call_later(0.01, lambda: ran.append("same slot"))
    clock.call_later(0.03, lambda: ran.append("later"))
    await until(lambda: len(ran) == 2)
    assert sorted(ran) == ["later", "same slot"]


async def test_an_earlier_entry_rearms_the_clock_and_close_cancels_everything() -> None:
    clock = Clock(resolution=0.005)
    ran: list[str] = []
    clock.call_later(10.0, lambda: ran.append("far"))
    clock.call_later(0.01, lambda: ran.append("soon"))  # earlier than what is armed
    await until(lambda: ran == ["soon"])
    assert ran == ["soon"]
    clock.close()
    assert len(clock) == 0
    with pytest.raises(ValueError, match="positive"):
        Clock(resolution=0)
