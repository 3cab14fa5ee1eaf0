"""A connection's frame budget: a token bucket that tells once, then drops, then closes."""

from __future__ import annotations

import pytest

from gateway.domain.frame_budget import Admission, FrameBudget

pytestmark = pytest.mark.unit


def test_a_burst_is_accepted_and_the_next_frame_refused_with_a_retry_time() -> None:
    budget = FrameBudget(rate=2.0, burst=3)
    assert [budget.admit(10.0) for _ in range(3)] == [Admission.ACCEPT] * 3
    assert budget.admit(10.0) is Admission.REFUSE_AND_TELL
    assert budget.retry_after() == pytest.approx(0.5)


def test_refusals_after_the_first_are_silent_until_a_burst_of_them_closes() -> None:
    budget = FrameBudget(rate=1.0, burst=2)
    budget.admit(0.0), budget.admit(0.0)
    outcomes = [budget.admit(0.0) for _ in range(4)]
    assert outcomes == [
        Admission.REFUSE_AND_TELL,
        Admission.REFUSE,
        Admission.CLOSE,
        Admission.CLOSE,
    ]


def test_tokens_come_back_at_the_rate_up_to_the_burst() -> None:
    budget = FrameBudget(rate=10.0, burst=2)
    budget.admit(0.0), budget.admit(0.0)
    assert budget.admit(0.05) is Admission.REFUSE_AND_TELL
    assert budget.admit(0.15) is Admission.ACCEPT  # one token back after 0.1 s
    assert [budget.admit(100.0) for _ in range(3)] == [
        Admission.ACCEPT,
        Admission.ACCEPT,
        Admission.REFUSE_AND_TELL,  # a long pause refills the burst, not more
    ]


def test_a_client_back_within_its_budget_is_told_again_on_its_next_excess() -> None:
    budget = FrameBudget(rate=1.0, burst=1)
    budget.admit(0.0)
    assert budget.admit(0.0) is Admission.REFUSE_AND_TELL
    assert budget.admit(2.0) is Admission.ACCEPT
    assert budget.admit(2.0) is Admission.REFUSE_AND_TELL
