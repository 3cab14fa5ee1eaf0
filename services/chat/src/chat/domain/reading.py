"""Read markers and unread counts.

A member's read marker is the highest sequence number they have read. It only moves forward and
never beyond the conversation's last message. A message is unread for a member when its sequence
number is above the member's marker, someone else sent it, and it is not deleted. A member who
joins later starts with the marker at the conversation's last message at joining time (history
from before joining is never "unread").
"""

from __future__ import annotations

from dataclasses import dataclass

from chat.domain.errors import InvalidError


@dataclass(frozen=True, slots=True)
class MarkerMove:
    """The outcome of a mark-read request: the marker now, and whether it moved."""

    seq: int
    moved: bool


def advance(*, current: int, requested: int, last_seq: int) -> MarkerMove:
    """Where a marker at ``current`` goes when a member reads up to ``requested``."""
    if requested < 0:
        raise InvalidError("a sequence number is never negative")
    target = min(requested, last_seq)
    if target <= current:
        return MarkerMove(current, moved=False)
    return MarkerMove(target, moved=True)


def is_unread(*, seq: int, sender_id: str, deleted: bool, reader_id: str, marker: int) -> bool:
    """The unread rule for one message and one reader (the store counts with the same rule)."""
    return seq > marker and sender_id != reader_id and not deleted
