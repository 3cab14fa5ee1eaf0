"""The bounded send queue of one WebSocket connection and its drop policy (pure, no I/O).

Frames are queued already encoded. Two kinds:

* **droppable** (typing, presence): ephemeral; a newer one supersedes it. Accepted only while the
  queue is below ``droppable_limit``; when an essential frame needs room, the oldest droppable
  frame in the queue is evicted for it.
* **essential** (messages, reads, membership, notifications, replies to the client): never
  dropped silently. When the queue is full of essential frames the client is too slow, and
  :meth:`SendQueue.offer` answers :attr:`Offer.OVERFLOW`: the connection must be closed (the
  client then resumes and recovers the gap from history).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class Offer(enum.Enum):
    """What became of an offered frame."""

    QUEUED = "queued"
    DROPPED = "dropped"
    """A droppable frame refused because the queue is busy."""
    OVERFLOW = "overflow"
    """An essential frame that found no room: close the connection as too slow."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One encoded frame waiting to be sent."""

    text: str
    droppable: bool
    kind: str = ""
    """The frame's ``type`` (for metrics)."""
    born: float = 0.0
    """Unix time the live message it carries was created, else 0 (for the delivery latency)."""


class SendQueue:
    """A FIFO of frames with at most ``capacity`` entries and the drop policy above."""

    def __init__(
        self,
        capacity: int,
        *,
        droppable_limit: int | None = None,
        on_drop: Callable[[str], None] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.droppable_limit = max(1, capacity // 2) if droppable_limit is None else droppable_limit
        self.dropped = 0
        """Droppable frames refused or evicted so far."""
        self._on_drop = on_drop
        """Told the ``kind`` of every droppable frame refused or evicted."""
        # Made with the first frame and dropped once drained: an idle socket's empty deque would
        # still hold a 64-slot block (some 0.7 KB), and a gateway holds thousands of sockets.
        self._items: deque[Outgoing] | None = None

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else 0

    def offer(self, text: str, *, droppable: bool, kind: str = "", born: float = 0.0) -> Offer:
        """Queue a frame if the policy lets it in."""
        if self._items is None:
            self._items = deque()
        if droppable:
            if len(self._items) >= self.droppable_limit:
                self._drop(kind)
                return Offer.DROPPED
            self._items.append(Outgoing(text, True, kind, born))
            return Offer.QUEUED
        if len(self._items) >= self.capacity and not self._evict_droppable():
            return Offer.OVERFLOW
        self._items.append(Outgoing(text, False, kind, born))
        return Offer.QUEUED

    def pop(self) -> Outgoing | None:
        """The oldest frame, or None when empty."""
        if not self._items:
            return None
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def _evict_droppable(self) -> bool:
        assert self._items is not None
        for i, item in enumerate(self._items):
            if item.droppable:
                del self._items[i]
                self._drop(item.kind)
                return True
        return False

    def _drop(self, kind: str) -> None:
        self.dropped += 1
        if self._on_drop is not None:
            self._on_drop(kind)
