"""The TTL policy table: every entity declared once, TTLs jittered within bounds."""

from __future__ import annotations

import pytest

from shared.ttl import TtlPolicy, TtlRule, UnknownEntityError

pytestmark = pytest.mark.unit

POLICY = TtlPolicy(
    {
        "profile": TtlRule(ttl=300, jitter=0.1, negative_ttl=30),
        "presence": TtlRule(ttl=60, jitter=0),
    }
)


def test_ttls_are_jittered_within_the_declared_fraction() -> None:
    samples = {POLICY.ttl("profile") for _ in range(200)}
    assert all(270 <= s <= 330 for s in samples)
    assert len(samples) > 100  # actually jittered, not a constant


def test_negative_entries_use_their_own_shorter_ttl() -> None:
    assert all(27 <= POLICY.ttl("profile", negative=True) <= 33 for _ in range(100))


def test_negative_ttl_defaults_to_a_tenth_of_the_ttl() -> None:
    assert POLICY.ttl_ms("presence", negative=True) == 6000


def test_milliseconds_are_whole_and_positive() -> None:
    assert POLICY.ttl_ms("presence") == 60_000
    assert TtlRule(ttl=0.0001, jitter=0).sample_ms() == 1


def test_an_undeclared_entity_is_an_error_not_a_default() -> None:
    with pytest.raises(UnknownEntityError):
        POLICY.ttl("sessions")


@pytest.mark.parametrize(
    "kwargs", [{"ttl": 0}, {"ttl": 10, "jitter": 1.0}, {"ttl": 10, "negative_ttl": -1}]
)
def test_nonsense_rules_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        TtlRule(**kwargs)


def test_the_policy_is_a_read_only_mapping() -> None:
    assert set(POLICY) == {"profile", "presence"}
    assert len(POLICY) == 2
