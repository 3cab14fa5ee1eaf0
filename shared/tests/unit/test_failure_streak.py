"""The backoff and logging of a retry loop's failure streak."""

from __future__ import annotations

import logging

import pytest

from shared.bus import partition
from shared.bus.partition import _FailureStreak

pytestmark = pytest.mark.unit


def test_a_streak_logs_its_first_failure_then_a_reminder_then_its_end(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(partition.time, "monotonic", lambda: now[0])
    streak = _FailureStreak("reads on s", first=0.5, cap=2.0, report_every=30.0)
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
