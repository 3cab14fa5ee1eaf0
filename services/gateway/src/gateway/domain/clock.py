"""One timer for every connection of a process: heartbeats and token expiries.

A timer per socket is dear at 10,000 sockets: uvloop's timer handle holds a libuv handle, about
a kilobyte with its callback, and a socket had two (its heartbeat and its token's expiry). The
clock keeps, per socket, an entry in a bucket of its due time (rounded up to ``resolution``
seconds) and one loop timer for the earliest bucket; when it fires, every entry due runs (the
gateway's resolution is 50 ms: a bucket's heartbeats leave together, and the publisher batches
what is sent in one loop iteration, while their slot renewals stay spread over the second).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
from collections.abc import Callable

log = logging.getLogger(__name__)


class Entry:
    """A scheduled callback (:meth:`Clock.cancel` it)."""

    __slots__ = ("callback", "slot")

    def __init__(self, callback: Callable[[], object], slot: int) -> None:
        self.callback = callback
        self.slot = slot


class Clock:
    """Callbacks at loop times, ``resolution`` seconds apart at the finest (late, never early)."""

    def __init__(self, *, resolution: float = 1.0) -> None:
        if resolution <= 0:
            raise ValueError("resolution must be positive")
        self.resolution = resolution
        self._buckets: dict[int, set[Entry]] = {}
        self._slots: list[int] = []  # a heap of the buckets' slots
        self._timer: asyncio.TimerHandle | None = None
        self._armed: int | None = None

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def call_later(self, delay: float, callback: Callable[[], object]) -> Entry:
        """Run ``callback`` in ``delay`` seconds (up to ``resolution`` later)."""
        loop = asyncio.get_running_loop()
        slot = math.ceil((loop.time() + max(0.0, delay)) / self.resolution)
        entry = Entry(callback, slot)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = set()
            heapq.heappush(self._slots, slot)
        bucket.add(entry)
        if self._armed is None or slot < self._armed:
            self._arm(loop, slot)
        return entry

    def cancel(self, entry: Entry) -> None:
        """Forget ``entry`` (nothing happens if it ran or was cancelled)."""
        bucket = self._buckets.get(entry.slot)
        if bucket is not None:
            bucket.discard(entry)
            if not bucket:
                del self._buckets[entry.slot]  # its slot leaves the heap when it comes up

    def close(self) -> None:
        """Cancel everything."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._armed = None
        self._buckets.clear()
        self._slots.clear()

    def _arm(self, loop: asyncio.AbstractEventLoop, slot: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed = slot
        self._timer = loop.call_at(slot * self.resolution, self._fire)

    def _fire(self) -> None:
        self._timer = self._armed = None
        loop = asyncio.get_running_loop()
        now = loop.time() + 0.001  # a loop may fire a timer a hair before its time
        while self._slots and self._slots[0] * self.resolution <= now:
            slot = heapq.heappop(self._slots)
            for entry in self._buckets.pop(slot, ()):
                try:
                    entry.callback()
                except Exception:
                    log.exception("a clock callback failed")
        while self._slots and self._slots[0] not in self._buckets:
            heapq.heappop(self._slots)  # emptied by cancels
        if self._slots:
            self._arm(loop, self._slots[0])
