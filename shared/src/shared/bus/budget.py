"""A bound on messages in flight, shared by every partition an instance consumes."""

from __future__ import annotations

import asyncio
from collections import deque


class InFlightBudget:
    """Counts messages read but not yet finished; readers wait, first come first served.

    Cheaper than a semaphore per message: a reader takes up to a whole batch in one call. Waiters
    are served in order, so a reader that gives slots back and asks again at once cannot starve
    the others.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("in-flight limit must be >= 1")
        self.limit = limit
        self.used = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._woken = 0  # waiters told there is room that have not taken it yet

    async def take(self, wanted: int) -> int:
        """Wait for room, then reserve between 1 and ``wanted`` slots; returns how many."""
        if self._waiters or self._woken or self.used >= self.limit:
            future = asyncio.get_running_loop().create_future()
            self._waiters.append(future)
            try:
                await future
            except asyncio.CancelledError:
                if future in self._waiters:
                    self._waiters.remove(future)
                elif future.done() and not future.cancelled():
                    self._woken -= 1  # pass the room on
                    self._wake()
                raise
            self._woken -= 1
        # Leave one slot for each other waiter already woken.
        granted = max(1, min(wanted, self.limit - self.used - self._woken))
        self.used += granted
        self._wake()
        return granted

    def give(self, count: int) -> None:
        """Return ``count`` slots."""
        if count:
            self.used -= count
            self._wake()

    def _wake(self) -> None:
        while self._waiters and self.used + self._woken < self.limit:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                self._woken += 1
