"""Login lockout: how long a (username, address) pair is refused after its failure budget runs out.

The budget (10 failed password checks per username *and client address* per 15 minutes) is kept in
Redis; this module holds the pure rules. Each exhaustion is a *strike*; the lockout doubles with
each strike inside the strike memory (24 h by default), up to a ceiling, so a patient attacker gets
ever fewer guesses per day while a user who mistypes ten times waits once. The lockout is per pair
so that a stranger's guesses do not lock the owner out; against guesses spread over many addresses
the username's checks slow down (one per ``slowdown`` seconds) once ``user_threshold`` failures
from anywhere fell in the window, without refusing anyone for long.
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
    user_threshold: int = 50
    slowdown: float = 2.0

    def __post_init__(self) -> None:
        if min(self.threshold, self.address_threshold, self.user_threshold) < 1:
            raise ValueError("thresholds must be at least 1")
        if min(self.window, self.base, self.ceiling, self.strike_memory, self.slowdown) <= 0:
            raise ValueError("durations must be positive")

    def lockout_for(self, strike: int) -> float:
        """Seconds of lockout for the ``strike``-th exhaustion of the budget (1-based)."""
        if strike < 1:
            raise ValueError("strikes count from 1")
        # Cap the exponent first so a long-lived strike counter cannot overflow the float.
        return min(self.ceiling, self.base * float(2 ** min(strike - 1, 32)))
