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
from chat.handlers.conversations import (
    check_text,
    member_view,
    refuse_direct_block,
)
from chat.store.protocols import (
    Announcement,
    BlockStore,
    ConversationStore,
    EventSink,
    MessageStore,
)
from contracts import chat as wire


class Messages:
    """Message use cases."""

    def __init__(
        self,
        *,
        conversations: ConversationStore,
        messages: MessageStore,
        blocks: BlockStore,
        events: EventSink,
        clock: Callable[[], datetime],
    ) -> None:
        self._conversations = conversations
        self._messages = messages
        self._blocks = blocks
        self._events = events
        self._clock = clock

    async def post(self, cmd: wire.PostMessage) -> wire.PostResult:
        """Store with the next sequence number, or return the original of a retried post."""
        check_text(cmd.body, field="body")
        conv, _ = await member_view(self._conversations, cmd.conversation_id, cmd.sender_id)
        await refuse_direct_block(self._blocks, conv, cmd.sender_id)
        mentions = rules.check_mentions(conv, list(cmd.mentions))
        draft = Draft(
            conversation_id=conv.id,
            sender_id=cmd.sender_id,
            client_msg_id=cmd.client_msg_id,
            body=cmd.body,
            mentions=mentions,
            created_at=self._clock(),
        )
        herald = _Herald(
            self._events,
            lambda m: wire.MessagePosted(
                conversation_id=m.conversation_id, message=shapes.message(m)
            ),
            lambda m: f"{m.id}.posted",
        )
        message, replay = await self._messages.append(draft, announce=herald.announce)
        await herald.emit()
        return wire.PostResult(message=shapes.message(message), replay=replay)

    async def edit(self, cmd: wire.EditMessage) -> wire.ChatMessage:
        """Change the body of one's own message (keeps the edit time)."""
        check_text(cmd.body, field="body")
        await member_view(self._conversations, cmd.conversation_id, cmd.user_id)
        current = await self._found(cmd.conversation_id, cmd.seq)
        changed = rules.edit(current, editor_id=cmd.user_id, body=cmd.body, at=self._clock())
        herald = _Herald(
            self._events,
            lambda m: wire.MessageEdited(
                conversation_id=m.conversation_id, message=shapes.message(m)
            ),
            lambda m: f"{m.id}.v{m.version}",
        )
        if not await self._messages.save(changed, announce=herald.announce):
            raise ConflictError("the message changed meanwhile; read it again")
        await herald.emit()
        return shapes.message(changed)

    async def delete(self, cmd: wire.DeleteMessage) -> wire.ChatMessage:
        """Turn a message into a tombstone (its sender, or a group's owner or admin)."""
        conv, _ = await member_view(self._conversations, cmd.conversation_id, cmd.user_id)
        current = await self._found(cmd.conversation_id, cmd.seq)
        tombstone = rules.delete(current, conv=conv, actor_id=cmd.user_id)
        if tombstone is not current:
            herald = _Herald(
                self._events,
                lambda m: wire.MessageDeleted(
                    conversation_id=m.conversation_id,
                    seq=m.seq,
                    message_id=m.id,
                    deleted_by=cmd.user_id,
                ),
                lambda m: f"{m.id}.deleted",
            )
            if not await self._messages.save(tombstone, announce=herald.announce):
                raise ConflictError("the message changed meanwhile; read it again")
            await herald.emit()
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


class _Herald:
    """The event of a message change, announced by the store with its write.

    The store calls :meth:`announce` with the stored message (its cache write publishes the
    frame in the same round trip); :meth:`emit` then appends the event to the stream under the
    same envelope.
    """

    def __init__(
        self,
        events: EventSink,
        event_of: Callable[[rules.Message], object],
        envelope_id_of: Callable[[rules.Message], str],
    ) -> None:
        self._events = events
        self._event_of = event_of
        self._envelope_id_of = envelope_id_of
        self._announced: tuple[object, Announcement] | None = None

    def announce(self, message: rules.Message) -> Announcement:
        event = self._event_of(message)
        announcement = self._events.announcement(event, envelope_id=self._envelope_id_of(message))
        self._announced = (event, announcement)
        return announcement

    async def emit(self) -> None:
        if self._announced is None:  # the store broke its contract: say so, do not go quiet
            raise RuntimeError("the message store stored a message without announcing it")
        event, announcement = self._announced
        await self._events.emit(event, envelope_id=announcement.envelope.id, announced=announcement)
