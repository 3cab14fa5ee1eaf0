"""Rate-limit policies and the headers a result turns into."""

from __future__ import annotations

import pytest

from shared.ratelimit import RateLimitError, RateLimitPolicy, RateLimitResult, rate_limit_headers

pytestmark = pytest.mark.unit


def result(*, allowed: bool, retry_after: float | None) -> RateLimitResult:
    return RateLimitResult(
        allowed=allowed,
        limit=10,
        remaining=0 if not allowed else 4,
        reset_after=2.2,
        retry_after=retry_after,
        period=60.0,
    )


def test_an_admitted_request_gets_ratelimit_headers_without_retry_after() -> None:
    assert rate_limit_headers(result(allowed=True, retry_after=None)) == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "4",
        "RateLimit-Reset": "3",
        "RateLimit-Policy": "10;w=60",
    }


def test_a_rejected_request_gets_retry_after_rounded_up() -> None:
    headers = rate_limit_headers(result(allowed=False, retry_after=0.25))
    assert headers["Retry-After"] == "1"
    assert headers["RateLimit-Remaining"] == "0"
    assert rate_limit_headers(result(allowed=False, retry_after=3.01))["Retry-After"] == "4"


def test_burst_defaults_to_the_rate_and_sets_the_limit() -> None:
    assert RateLimitPolicy(rate=30, period=60.0).limit == 30
    assert RateLimitPolicy(rate=30, period=60.0, burst=5).limit == 5
    assert RateLimitPolicy(rate=30, period=60.0).emission_us == 2_000_000


@pytest.mark.parametrize(("rate", "period", "burst"), [(0, 1.0, None), (1, 0.0, None), (1, 1.0, 0)])
def test_nonsense_policies_are_refused(rate: int, period: float, burst: int | None) -> None:
    with pytest.raises(RateLimitError):
        RateLimitPolicy(rate=rate, period=period, burst=burst)
