"""Messages: per-conversation sequence numbers, edits, tombstones, mentions.

Sequence numbers start at 1 and have no gaps; they are assigned by the store inside the insert
transaction. ``version`` counts changes (1 when posted, +1 per edit or delete) so that a cache
never replaces a newer copy of a message with an older one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from chat.domain.conversations import Conversation, Kind, Role
from chat.domain.errors import ConflictError, ForbiddenError, InvalidError

HISTORY_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Message:
    """One message; a deleted one is a tombstone (empty body, no mentions, ``deleted``)."""

    id: str
    conversation_id: str
    seq: int
    sender_id: str
    client_msg_id: str
    body: str
    created_at: datetime
    mentions: tuple[str, ...] = ()
    edited_at: datetime | None = None
    deleted: bool = False
    version: int = 1


@dataclass(frozen=True, slots=True)
class Draft:
    """A message about to be posted (the store gives it its id and sequence number)."""

    conversation_id: str
    sender_id: str
    client_msg_id: str
    body: str
    mentions: tuple[str, ...]
    created_at: datetime


def check_mentions(conv: Conversation, mentions: list[str]) -> tuple[str, ...]:
    """Mentions deduplicated in order; each must be a member of the conversation."""
    unique = tuple(dict.fromkeys(mentions))
    strangers = [m for m in unique if m not in conv.member_ids]
    if strangers:
        raise InvalidError(f"mentions of non-members: {', '.join(strangers)}")
    return unique


def edit(message: Message, *, editor_id: str, body: str, at: datetime) -> Message:
    """``message`` with a new body; only its sender edits it, and never a tombstone."""
    if message.sender_id != editor_id:
        raise ForbiddenError("only the sender edits a message")
    if message.deleted:
        raise ConflictError("a deleted message cannot be edited")
    return replace(message, body=body, edited_at=at, version=message.version + 1)


def delete(message: Message, *, conv: Conversation, actor_id: str) -> Message:
    """The tombstone of ``message``: by its sender, or by a group's owner or admin."""
    if message.sender_id != actor_id:
        role = conv.role_of(actor_id)
        if conv.kind is not Kind.GROUP or role not in (Role.OWNER, Role.ADMIN):
            raise ForbiddenError("only the sender or a group admin deletes a message")
    if message.deleted:
        return message
    return replace(message, body="", mentions=(), deleted=True, version=message.version + 1)


@dataclass(frozen=True, slots=True)
class Window:
    """Which sequence numbers a history request covers, given the conversation's last one.

    ``after``: the first ``limit`` above it; ``before``: the last ``limit`` below it; neither:
    the latest ``limit``. Always ascending.
    """

    first: int
    last: int

    @property
    def seqs(self) -> range:
        """The sequence numbers covered (empty when ``first > last``)."""
        return range(self.first, self.last + 1)


def window(*, last_seq: int, before: int | None, after: int | None, limit: int) -> Window:
    """The :class:`Window` of a history request, or InvalidError."""
    if not 1 <= limit <= HISTORY_LIMIT:
        raise InvalidError(f"limit must be between 1 and {HISTORY_LIMIT}")
    if before is not None and after is not None:
        raise InvalidError("ask for messages before or after a sequence number, not both")
    if after is not None:
        return Window(after + 1, min(after + limit, last_seq))
    top = last_seq if before is None else min(before - 1, last_seq)
    return Window(max(1, top - limit + 1), top)
