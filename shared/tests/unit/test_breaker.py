"""The circuit breaker's state machine, on a clock the tests move by hand."""

from __future__ import annotations

import logging
import uuid

import pytest
from prometheus_client import REGISTRY

from shared.breaker import Breakers, BreakerSettings, CircuitBreaker, CircuitOpenError, State

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


SETTINGS = BreakerSettings(failures=3, window=10.0, cooldown=5.0)


def _breaker(clock: FakeClock, settings: BreakerSettings = SETTINGS) -> CircuitBreaker:
    return CircuitBreaker(f"test:{uuid.uuid4().hex[:8]}", settings, clock=clock)


def _fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record_failure()


def test_a_new_breaker_is_closed_and_lets_calls_through() -> None:
    breaker = _breaker(FakeClock())
    assert breaker.state is State.CLOSED
    assert breaker.allow()


def test_it_opens_after_the_threshold_of_failures_within_the_window() -> None:
    breaker = _breaker(FakeClock())
    _fail(breaker, 2)
    assert breaker.state is State.CLOSED
    breaker.record_failure()
    assert breaker.state is State.OPEN
    assert not breaker.allow()


def test_a_success_between_failures_starts_the_count_again() -> None:
    breaker = _breaker(FakeClock())
    _fail(breaker, 2)
    breaker.record_success()
    _fail(breaker, 2)
    assert breaker.state is State.CLOSED


def test_failures_spread_wider_than_the_window_do_not_open_it() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for _ in range(6):
        breaker.record_failure()
        clock.advance(6.0)  # two failures never share a 10 s window with a third
    assert breaker.state is State.CLOSED


def test_an_open_breaker_refuses_until_the_cooldown_then_lets_one_probe_through() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    _fail(breaker, 3)
    clock.advance(4.9)
    assert not breaker.allow()
    assert breaker.retry_after() == pytest.approx(0.1, abs=0.01)
    clock.advance(0.2)
    assert breaker.allow()
    assert breaker.state is State.HALF_OPEN
    assert not breaker.allow(), "a second call while the probe is out is refused"


def test_a_successful_probe_closes_it() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    _fail(breaker, 3)
    clock.advance(5.0)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is State.CLOSED
    assert breaker.allow()
    _fail(breaker, 2)
    assert breaker.state is State.CLOSED, "the count starts from zero after closing"


def test_a_failed_probe_opens_it_for_another_cooldown() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    _fail(breaker, 3)
    clock.advance(5.0)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is State.OPEN
    assert breaker.retry_after() == pytest.approx(5.0)
    clock.advance(4.0)
    assert not breaker.allow()


def test_a_probe_that_never_reports_is_replaced_after_a_cooldown() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    _fail(breaker, 3)
    clock.advance(5.0)
    assert breaker.allow()  # this probe's task is cancelled: it never reports
    clock.advance(5.0)
    assert breaker.allow()
    assert breaker.state is State.HALF_OPEN


def test_a_disabled_breaker_never_opens() -> None:
    breaker = _breaker(FakeClock(), BreakerSettings(enabled=False, failures=1))
    _fail(breaker, 10)
    assert breaker.state is State.CLOSED
    assert breaker.allow()


def test_each_state_change_logs_one_line_and_refused_calls_log_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    with caplog.at_level(logging.INFO, logger="shared.breaker"):
        _fail(breaker, 10)
        for _ in range(100):
            breaker.allow()
        clock.advance(5.0)
        breaker.allow()
        breaker.record_success()
        for _ in range(100):
            breaker.record_success()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "opened" in lines[0] and breaker.name in lines[0]
    assert "half-open" in lines[1]
    assert "closed" in lines[2]


def _sample(name: str, labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_the_state_gauge_and_transition_counter_follow_the_breaker() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    assert _sample("parley_breaker_state", {"breaker": breaker.name}) == 0
    _fail(breaker, 3)
    assert _sample("parley_breaker_state", {"breaker": breaker.name}) == 2
    clock.advance(5.0)
    breaker.allow()
    assert _sample("parley_breaker_state", {"breaker": breaker.name}) == 1
    breaker.record_success()
    assert _sample("parley_breaker_state", {"breaker": breaker.name}) == 0
    for to, count in (("open", 1), ("half_open", 1), ("closed", 1)):
        labels = {"breaker": breaker.name, "to": to}
        assert _sample("parley_breaker_transitions_total", labels) == count


def test_a_family_gives_one_breaker_per_name_with_its_settings() -> None:
    clock = FakeClock()
    family = Breakers(f"fam{uuid.uuid4().hex[:6]}", BreakerSettings(failures=1), clock=clock)
    first = family.get("a")
    assert family.get("a") is first
    assert first.name == f"{family.family}:a"
    first.record_failure()
    assert first.state is State.OPEN
    assert family.get("b").state is State.CLOSED
    assert {b.name for b in family} == {f"{family.family}:a", f"{family.family}:b"}


def test_the_open_error_names_the_breaker_and_when_to_retry() -> None:
    error = CircuitOpenError("redis:slot-map", 2.5)
    assert error.breaker == "redis:slot-map"
    assert error.retry_after == 2.5
    assert "redis:slot-map" in str(error) and "2.5" in str(error)
