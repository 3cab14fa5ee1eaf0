"""The failure streak of a retrying loop: backoff, and logs that stay short through an outage."""

from __future__ import annotations

import logging
import random
import time


class FailureStreak:
    """Backoff and logging for a loop that retries a failing call (Redis away, say).

    The first failure of a streak is logged with its traceback, then one line every
    ``report_every`` seconds while it lasts, and one when it ends: a partition worker per stream
    partition retrying twice a second would otherwise write a traceback each time, tens a second
    per process, for as long as an outage lasts. The delay doubles from ``first`` to ``cap`` (a
    loop with a cadence of its own, the lease heartbeat, ignores it). ``logger`` is the caller's.
    """

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        *,
        first: float = 0.5,
        cap: float = 2.0,
        report_every: float = 30.0,
    ) -> None:
        self.what = what
        self._log = logger
        self.count = 0
        self._first, self._cap, self._every = first, cap, report_every
        self._reported_at = 0.0

    def failed(self, error: BaseException) -> float:
        """Count and maybe log a failure; the seconds to wait before the next attempt."""
        self.count += 1
        now = time.monotonic()
        if self.count == 1:
            self._log.error("%s failed; retrying", self.what, exc_info=error)
            self._reported_at = now
        elif now - self._reported_at >= self._every:
            self._log.warning(
                "%s still failing after %d attempts: %r", self.what, self.count, error
            )
            self._reported_at = now
        delay = min(self._cap, self._first * 2 ** (self.count - 1))
        return float(delay * random.uniform(0.8, 1.0))

    def succeeded(self) -> None:
        """End a streak (logged when there was one)."""
        if self.count:
            self._log.info("%s work again after %d failed attempt(s)", self.what, self.count)
            self.count = 0
