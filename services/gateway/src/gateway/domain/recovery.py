"""Recovery rules: in-order delivery per conversation, gaps, and bounded catch-up (pure).

A connection keeps one :class:`Cursor` per conversation: the last ``seq`` the client has. A live
message is delivered when it is the next one, ignored when already delivered, and otherwise
starts a recovery: the missed messages are fetched from the chat history (the durable record)
while newer live messages are held back, then both are merged in order. A catch-up larger than
the bound is not attempted: the client is told ``recovered: false`` and reloads the conversation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_BOUND = 200
"""Messages recovered per conversation at most; a larger gap means reload."""
PAGE = 100
"""Largest page of the chat history command."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What to fetch for one conversation: ``after`` < seq <= ``until``, or nothing."""

    recovered: bool
    after: int
    until: int

    def pages(self, page: int = PAGE) -> list[tuple[int, int]]:
        """``(after, limit)`` history requests covering the plan, in order."""
        if not self.recovered:
            return []
        out: list[tuple[int, int]] = []
        start = self.after
        while start < self.until:
            limit = min(page, self.until - start)
            out.append((start, limit))
            start += limit
        return out


def plan_recovery(last_seen: int, head: int, *, bound: int = DEFAULT_BOUND) -> Plan:
    """The catch-up from ``last_seen`` to the conversation's ``head`` seq, within ``bound``."""
    if head <= last_seen:
        return Plan(True, last_seen, last_seen)
    if head - last_seen > bound:
        return Plan(False, last_seen, head)
    return Plan(True, last_seen, head)


class Verdict(enum.Enum):
    """What to do with a live message."""

    DELIVER = "deliver"
    DUPLICATE = "duplicate"
    """Already delivered (or recovered): drop it."""
    HELD = "held"
    """Kept until the running recovery ends."""
    GAP = "gap"
    """Kept, and a recovery must start from :attr:`Cursor.last`."""


@dataclass
class Cursor(Generic[T]):
    """Delivery state of one conversation on one connection."""

    last: int | None = None
    recovering: bool = False
    held: dict[int, T] = field(default_factory=dict)

    def live(self, seq: int, item: T) -> Verdict:
        """Classify a live message with sequence ``seq``."""
        if self.last is not None and seq <= self.last:
            return Verdict.DUPLICATE
        if self.recovering:
            self.held[seq] = item
            return Verdict.HELD
        if self.last is None or seq == self.last + 1:
            self.last = seq
            return Verdict.DELIVER
        self.held[seq] = item
        self.recovering = True
        return Verdict.GAP

    def begin(self, last_seen: int | None = None) -> None:
        """Start a recovery (a client's ``resume`` says what it has seen)."""
        if last_seen is not None:
            self.last = last_seen
        self.recovering = True

    def finish(self, history: list[tuple[int, T]], *, head: int | None = None) -> list[T]:
        """End a recovery: the fetched ``history`` then the held messages, in order, no repeats.

        ``head`` (when the gap was too large to fetch) moves the cursor there without delivery.
        Held messages are released while they follow on; if one is missing, the rest stay held
        and :attr:`recovering` stays true (call :meth:`gap_remains` and recover again).
        """
        if head is not None and (self.last is None or head > self.last):
            self.last = head
        out: list[T] = []
        for seq, item in sorted(history, key=lambda pair: pair[0]):
            if self.last is None or seq > self.last:
                self.last = seq
                out.append(item)
        for seq in sorted(self.held):
            item = self.held[seq]
            if self.last is not None and seq <= self.last:
                del self.held[seq]
            elif self.last is None or seq == self.last + 1:
                self.last = seq
                out.append(item)
                del self.held[seq]
            else:
                break
        self.recovering = bool(self.held)
        return out

    def gap_remains(self) -> bool:
        """Whether held messages still wait for a missing one."""
        return bool(self.held)

    def abandon(self) -> list[T]:
        """Give up recovering (history unavailable): release what is held, in order."""
        out = [self.held[s] for s in sorted(self.held)]
        if self.held:
            self.last = max(self.held)
        self.held.clear()
        self.recovering = False
        return out
