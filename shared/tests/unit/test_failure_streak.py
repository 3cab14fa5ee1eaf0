"""The backoff and logging of a retry loop's failure streak."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from contracts.topology import StreamSpec
from shared.bus.leases import PartitionLeases
from shared.bus.streak import FailureStreak

pytestmark = pytest.mark.unit


def test_a_streak_logs_its_first_failure_then_a_reminder_then_its_end(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    log = logging.getLogger("shared.bus.partition")
    streak = FailureStreak("reads on s", log, first=0.5, cap=2.0, report_every=30.0)
    with caplog.at_level(logging.INFO, logger="shared.bus.partition"):
        delays = []
        for _ in range(6):
            delays.append(streak.failed(ConnectionError("down")))
            now[0] += 1.0
        now[0] += 30.0
        still = ConnectionError("still down")
        streak.failed(still)
        streak.succeeded()
        streak.succeeded()  # no streak: nothing to say
    records = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records]
    assert records == [
        ("ERROR", "reads on s failed; retrying", True),
        (
            "WARNING",
            "reads on s still failing after 7 attempts: ConnectionError('still down')",
            False,
        ),
        ("INFO", "reads on s work again after 7 failed attempt(s)", False),
    ]
    # Doubling from 0.5 s up to the 2 s cap, each shortened by up to a fifth (jitter).
    for delay, ceiling in zip(delays, [0.5, 1.0, 2.0, 2.0, 2.0, 2.0], strict=True):
        assert 0.8 * ceiling <= delay <= ceiling
    assert streak.count == 0


class _ScriptsOnly:
    """Enough of a client for PartitionLeases to be built; the test replaces its heartbeat."""

    def register_script(self, source: str) -> object:
        return object()


async def test_failing_lease_heartbeats_log_one_traceback_not_one_per_beat(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def nothing(p: int) -> None:
        return None

    spec = StreamSpec(name="t.events", owner="t", partitions=2, max_len=1000)
    leases = PartitionLeases(
        _ScriptsOnly(),  # type: ignore[arg-type]
        spec,
        "reader",
        "i1",
        ttl=0.3,
        on_acquire=nothing,
        on_drain=nothing,
        on_lost=nothing,
    )
    beats = 0

    async def tick() -> None:
        nonlocal beats
        beats += 1
        if beats <= 6:
            raise ConnectionError("Redis is away")

    leases.tick = tick  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="shared.bus.leases"):
        runner = asyncio.create_task(leases.run())
        async with asyncio.timeout(5):
            while beats < 8:  # noqa: ASYNC110 - the heartbeat loop counts them
                await asyncio.sleep(0.02)
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    records = [r for r in caplog.records if r.name == "shared.bus.leases"]
    assert [r.levelname for r in records] == ["ERROR", "INFO"]
    assert records[0].exc_info and "lease heartbeats on t.events/reader" in records[0].getMessage()
    assert "after 6 failed" in records[1].getMessage()
