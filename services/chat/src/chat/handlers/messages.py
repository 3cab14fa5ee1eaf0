"""Use cases of messages: post (idempotent), edit, delete, history.

Every change is announced after it is stored. The event of a post carries an envelope id made
from the message id, and a replay announces it again with the same id: if the first attempt
stored the message but failed before publishing, the retry publishes it, and if it did publish,
consumers drop the copy (they deduplicate by envelope id). Real-time subscribers get a copy with
the same ``seq``, which clients ignore.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from chat.domain import messages as rules
from chat.domain.errors import ConflictError, NotFoundError
from chat.domain.messages import Draft
from chat.handlers import shapes
from chat.handlers.conversations import member_view, member_write
from chat.store.protocols import ConversationStore, EventSink, MessageStore
from contracts import chat as wire


class Messages:
    """Message use cases."""

    def __init__(
        self,
        *,
        conversations: ConversationStore,
        messages: MessageStore,
        events: EventSink,
        clock: Callable[[], datetime],
    ) -> None:
        self._conversations = conversations
        self._messages = messages
        self._events = events
        self._clock = clock

    async def post(self, cmd: wire.PostMessage) -> wire.PostResult:
        """Store with the next sequence number, or return the original of a retried post."""
        conv, _ = await member_write(self._conversations, cmd.conversation_id, cmd.sender_id)
        mentions = rules.check_mentions(conv, list(cmd.mentions))
        draft = Draft(
            conversation_id=conv.id,
            sender_id=cmd.sender_id,
            client_msg_id=cmd.client_msg_id,
            body=cmd.body,
            mentions=mentions,
            created_at=self._clock(),
        )
        message, replay = await self._messages.append(draft)
        shown = shapes.message(message)
        await self._events.emit(
            wire.MessagePosted(conversation_id=conv.id, message=shown),
            envelope_id=f"{message.id}.posted",
        )
        return wire.PostResult(message=shown, replay=replay)

    async def edit(self, cmd: wire.EditMessage) -> wire.ChatMessage:
        """Change the body of one's own message (keeps the edit time)."""
        await member_write(self._conversations, cmd.conversation_id, cmd.user_id)
        current = await self._found(cmd.conversation_id, cmd.seq)
        changed = rules.edit(current, editor_id=cmd.user_id, body=cmd.body, at=self._clock())
        if not await self._messages.save(changed):
            raise ConflictError("the message changed meanwhile; read it again")
        shown = shapes.message(changed)
        await self._events.emit(
            wire.MessageEdited(conversation_id=changed.conversation_id, message=shown),
            envelope_id=f"{changed.id}.v{changed.version}",
        )
        return shown

    async def delete(self, cmd: wire.DeleteMessage) -> wire.ChatMessage:
        """Turn a message into a tombstone (its sender, or a group's owner or admin)."""
        conv, _ = await member_write(self._conversations, cmd.conversation_id, cmd.user_id)
        current = await self._found(cmd.conversation_id, cmd.seq)
        tombstone = rules.delete(current, conv=conv, actor_id=cmd.user_id)
        if tombstone is not current:
            if not await self._messages.save(tombstone):
                raise ConflictError("the message changed meanwhile; read it again")
            await self._events.emit(
                wire.MessageDeleted(
                    conversation_id=conv.id,
                    seq=tombstone.seq,
                    message_id=tombstone.id,
                    deleted_by=cmd.user_id,
                ),
                envelope_id=f"{tombstone.id}.deleted",
            )
        return shapes.message(tombstone)

    async def history(self, cmd: wire.GetHistory) -> wire.History:
        """Messages by sequence number, ascending (members only)."""
        await member_view(self._conversations, cmd.conversation_id, cmd.user_id)
        rules.window(last_seq=0, before=cmd.before, after=cmd.after, limit=cmd.limit)
        found = await self._messages.history(
            cmd.conversation_id, before=cmd.before, after=cmd.after, limit=cmd.limit
        )
        return wire.History(items=[shapes.message(m) for m in found])

    async def _found(self, conversation_id: str, seq: int) -> rules.Message:
        message = await self._messages.get(conversation_id, seq)
        if message is None:
            raise NotFoundError(f"no message {seq} in {conversation_id}")
        return message
