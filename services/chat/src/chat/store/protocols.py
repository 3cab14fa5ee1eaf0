"""What the handlers need from storage; the SQL and Redis classes of this package implement it.

The same behaviour suite runs against the in-memory fakes of the unit tests and the real stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chat.domain.conversations import Conversation, Member
from chat.domain.messages import Draft, Message


@dataclass(frozen=True, slots=True)
class Summary:
    """One row of "my conversations": the conversation, its last message and my unread count."""

    conversation: Conversation
    last_seq: int
    unread: int
    last_message: Message | None


@dataclass(frozen=True, slots=True)
class Announcement:
    """A real-time frame ready to go out: ``command`` (SPUBLISH or PUBLISH) ``channel``
    ``payload``, and the envelope it carries (the event's stream entry reuses it)."""

    command: str
    channel: str
    payload: bytes
    envelope: Any


Announce = Callable[[Message], Announcement]
"""What to publish about a message once it is stored (given the stored message)."""


class ConversationStore(Protocol):
    """Conversations and their members."""

    async def create(self, conv: Conversation, *, direct_pair: str | None) -> Conversation:
        """Store a new conversation; for an existing direct pair, return that one instead."""
        ...

    async def get(self, conversation_id: str) -> Conversation | None:
        """The conversation with its members, or None."""
        ...

    async def last_seq(self, conversation_id: str) -> int:
        """The sequence number of the conversation's last message (0 when it has none)."""
        ...

    async def add_members(self, conversation_id: str, members: Sequence[Member]) -> None:
        """Add members; their read markers start at the conversation's last message."""
        ...

    async def remove_member(
        self, conversation_id: str, user_id: str, *, new_owner: str | None = None
    ) -> None:
        """Remove a member (promoting ``new_owner`` to owner in the same transaction)."""
        ...

    async def list_for(
        self, user_id: str, *, cursor: str | None, limit: int
    ) -> tuple[list[Summary], str | None]:
        """A page of the user's conversations, most recent activity first, and the next cursor."""
        ...

    async def ids_for(self, user_id: str, *, limit: int) -> list[str]:
        """The ids of the user's conversations, most recent activity first (at most ``limit``)."""
        ...


class MessageStore(Protocol):
    """Messages, with their per-conversation sequence numbers."""

    async def append(
        self, draft: Draft, *, announce: Announce | None = None
    ) -> tuple[Message, bool]:
        """Store ``draft`` with the next sequence number, or return the message already stored
        with its client message id; the flag says it was such a replay. ``announce`` is
        published once the message is stored (with the cache write, where there is one)."""
        ...

    async def get(self, conversation_id: str, seq: int) -> Message | None:
        """One message by sequence number."""
        ...

    async def save(self, message: Message, *, announce: Announce | None = None) -> bool:
        """Store a changed message (edit, tombstone) if its previous version is the stored one;
        False when someone changed it first. ``announce`` is published when it was stored."""
        ...

    async def history(
        self, conversation_id: str, *, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        """Messages in ascending sequence order (see :func:`chat.domain.messages.window`)."""
        ...


class ReadStore(Protocol):
    """Read markers and unread counts (the rule is :func:`chat.domain.reading.is_unread`)."""

    async def marker(self, conversation_id: str, user_id: str) -> int:
        """A member's read marker."""
        ...

    async def advance(self, conversation_id: str, user_id: str, seq: int) -> int:
        """Move the marker up to ``seq`` if that is forward; returns the marker now."""
        ...

    async def markers_in(self, conversation_id: str) -> dict[str, int]:
        """Every member's read marker, by user id."""
        ...

    async def unread(self, conversation_id: str, user_id: str) -> int:
        """The member's unread count in one conversation."""
        ...

    async def unread_all(self, user_id: str) -> dict[str, int]:
        """The user's unread count per conversation (every conversation they are in)."""
        ...


class BlockStore(Protocol):
    """Who blocked whom, as told by the user service's events."""

    async def block(self, blocker_id: str, blocked_id: str) -> None:
        """Record a block (idempotent)."""
        ...

    async def unblock(self, blocker_id: str, blocked_id: str) -> None:
        """Forget a block (idempotent)."""
        ...

    async def blocked_between(self, a: str, b: str) -> bool:
        """Whether either of the two blocked the other."""
        ...

    async def blockers_of(self, blocked_id: str, among: list[str]) -> list[str]:
        """Those of ``among`` who blocked ``blocked_id``."""
        ...


class TypingStore(Protocol):
    """Who is typing where; entries expire on their own."""

    ttl: float
    """Seconds a typing entry lives without a new frame."""

    async def start(self, conversation_id: str, user_id: str) -> bool:
        """Mark typing (refreshing the expiry); True when the user was not typing before."""
        ...

    async def stop(self, conversation_id: str, user_id: str) -> bool:
        """Clear typing; True when the user was typing."""
        ...

    async def typing(self, conversation_id: str) -> list[str]:
        """The users typing in a conversation now."""
        ...


class Throttle(Protocol):
    """A per-subject rate limit."""

    async def admit(self, subject: str) -> float | None:
        """None when admitted, else seconds until the next request would be."""
        ...


class EventSink(Protocol):
    """Where the handlers announce changes: the event stream and the real-time channels."""

    def announcement(self, event: object, *, envelope_id: str | None = None) -> Announcement:
        """``event``'s frame for its conversation's channel, for a store to publish together
        with its own write; ``emit(event, announced=...)`` then appends the same envelope."""
        ...

    async def emit(
        self,
        event: object,
        *,
        envelope_id: str | None = None,
        users: Iterable[str] = (),
        announced: Announcement | None = None,
    ) -> None:
        """Append ``event`` to ``chat.events`` (with ``envelope_id`` when given, so a re-emission
        is deduplicated by consumers) and publish it on its conversation's channel (unless
        ``announced`` there already) and on the channels of ``users``."""
        ...

    async def flash(self, message: object) -> None:
        """Publish a real-time-only message (typing) on its conversation's channel."""
        ...
