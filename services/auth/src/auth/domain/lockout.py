"""Login lockout: how long an account is refused after its failed-login budget runs out.

The budget itself (10 failures per username per 15 minutes) is counted by a GCRA limiter; this
module holds the pure rule for what happens when it runs out. Each exhaustion is a *strike*; the
lockout doubles with each strike inside the strike memory (24 h by default), up to a ceiling, so a
patient attacker gets ever fewer guesses per day while a user who mistypes ten times waits once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """Failure budget (``threshold`` per ``window`` s) and lockouts doubling up to ``ceiling``."""

    threshold: int = 10
    window: float = 900.0
    base: float = 900.0
    ceiling: float = 86400.0
    strike_memory: float = 86400.0
    address_threshold: int = 50

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.address_threshold < 1:
            raise ValueError("thresholds must be at least 1")
        if min(self.window, self.base, self.ceiling, self.strike_memory) <= 0:
            raise ValueError("durations must be positive")

    def lockout_for(self, strike: int) -> float:
        """Seconds of lockout for the ``strike``-th exhaustion of the budget (1-based)."""
        if strike < 1:
            raise ValueError("strikes count from 1")
        # Cap the exponent first so a long-lived strike counter cannot overflow the float.
        return min(self.ceiling, self.base * float(2 ** min(strike - 1, 32)))
