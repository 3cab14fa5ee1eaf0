"""Use cases of read markers: mark read (forward only), unread counts."""

from __future__ import annotations

from chat.domain import reading as rules
from chat.handlers.conversations import member_view
from chat.store.protocols import ConversationStore, EventSink, ReadStore
from contracts import chat as wire


class Reading:
    """Read-marker use cases."""

    def __init__(
        self, *, conversations: ConversationStore, reading: ReadStore, events: EventSink
    ) -> None:
        self._conversations = conversations
        self._reading = reading
        self._events = events

    async def mark_read(self, cmd: wire.MarkRead) -> wire.ReadMarker:
        """Move the caller's marker forward to ``seq`` (capped at the last message)."""
        conv, _ = await member_view(self._conversations, cmd.conversation_id, cmd.user_id)
        current = await self._reading.marker(conv.id, cmd.user_id)
        last = await self._conversations.last_seq(conv.id)
        move = rules.advance(current=current, requested=cmd.seq, last_seq=last)
        marker = current
        if move.moved:
            marker = await self._reading.advance(conv.id, cmd.user_id, move.seq)
            if marker > current:
                # Also on the reader's own channel: their other devices sync the marker.
                await self._events.emit(
                    wire.ReadUpdated(conversation_id=conv.id, user_id=cmd.user_id, seq=marker),
                    users=[cmd.user_id],
                )
        unread = await self._reading.unread(conv.id, cmd.user_id)
        return wire.ReadMarker(conversation_id=conv.id, seq=marker, unread_count=unread)

    async def read_markers(self, cmd: wire.GetReadMarkers) -> wire.ReadMarkers:
        """Every member's read marker; a non-member is answered as for an absent conversation."""
        conv, _ = await member_view(self._conversations, cmd.conversation_id, cmd.user_id)
        found = await self._reading.markers_in(conv.id)
        items = [
            wire.MemberReadMarker(user_id=user_id, seq=found.get(user_id, 0))
            for user_id in sorted(m.user_id for m in conv.members)
        ]
        return wire.ReadMarkers(conversation_id=conv.id, items=items)

    async def unread(self, cmd: wire.GetUnread) -> wire.UnreadCounts:
        """The caller's total unread count and the conversations that have some."""
        counts = await self._reading.unread_all(cmd.user_id)
        items = [
            wire.UnreadCount(conversation_id=c, unread_count=n)
            for c, n in sorted(counts.items())
            if n
        ]
        return wire.UnreadCounts(total=sum(counts.values()), items=items)
