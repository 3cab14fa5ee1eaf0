"""Domain objects in the shapes of the wire (``contracts.chat``)."""

from __future__ import annotations

from chat.domain.conversations import Conversation
from chat.domain.messages import Message
from chat.store.protocols import Summary
from contracts import chat as wire


def message(m: Message) -> wire.ChatMessage:
    """A message as clients see it (a tombstone keeps its place, without body or mentions)."""
    return wire.ChatMessage(
        id=m.id,
        conversation_id=m.conversation_id,
        seq=m.seq,
        sender_id=m.sender_id,
        body=m.body,
        client_msg_id=m.client_msg_id,
        created_at=m.created_at,
        mentions=list(m.mentions),
        edited_at=m.edited_at,
        deleted=m.deleted,
    )


def conversation(
    conv: Conversation, *, last_seq: int, unread: int, last: Message | None
) -> wire.Conversation:
    """A conversation as one member sees it."""
    return wire.Conversation(
        id=conv.id,
        kind=conv.kind.value,
        member_ids=[m.user_id for m in conv.members],
        last_seq=last_seq,
        title=conv.title,
        unread_count=unread,
        last_message=None if last is None else message(last),
    )


def summary(s: Summary) -> wire.Conversation:
    """One row of "my conversations"."""
    return conversation(s.conversation, last_seq=s.last_seq, unread=s.unread, last=s.last_message)
