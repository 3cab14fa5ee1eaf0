"""The bus subscribers of the service: decode (done by the bus), one handler call, map errors.

A domain error becomes a failed reply with its stable code (the command is handled and acked:
retrying cannot change the answer). Anything else propagates, so the bus retries and finally
dead-letters the message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from chat.domain.errors import ChatError, RateLimitedError
from chat.handlers.blocks import Blocks
from chat.handlers.conversations import Conversations
from chat.handlers.messages import Messages
from chat.handlers.reading import Reading
from chat.handlers.typing import Typing
from contracts import chat as wire
from contracts import user as user_wire
from contracts.base import Envelope, ErrorCode, Message, Reply
from shared.bus import Handler


def command(call: Callable[[Any], Awaitable[Any]]) -> Handler:
    """A bus handler around one use case: its result, or a failure with the error's code."""

    async def handle(message: Any, _envelope: Envelope) -> Any:
        try:
            return await call(message)
        except RateLimitedError as e:
            return Reply.failure(ErrorCode.RATE_LIMITED, str(e), retry_after=e.retry_after)
        except ChatError as e:
            return Reply.failure(ErrorCode(e.code), str(e))

    return handle


def event(call: Callable[[Any], Awaitable[None]]) -> Handler:
    """A bus handler around an event use case (failures are retried, then dead-lettered)."""

    async def handle(message: Any, _envelope: Envelope) -> None:
        await call(message)

    return handle


def command_handlers(
    *, conversations: Conversations, messages: Messages, reading: Reading, typing: Typing
) -> Mapping[type[Message], Handler]:
    """Every ``chat.commands`` message and its handler."""
    return {
        wire.CreateConversation: command(conversations.create),
        wire.GetConversation: command(conversations.get),
        wire.ListConversations: command(conversations.list_mine),
        wire.ListConversationIds: command(conversations.list_ids),
        wire.AddMembers: command(conversations.add_members),
        wire.RemoveMember: command(conversations.remove_member),
        wire.LeaveConversation: command(conversations.leave),
        wire.PostMessage: command(messages.post),
        wire.EditMessage: command(messages.edit),
        wire.DeleteMessage: command(messages.delete),
        wire.GetHistory: command(messages.history),
        wire.MarkRead: command(reading.mark_read),
        wire.GetReadMarkers: command(reading.read_markers),
        wire.GetUnread: command(reading.unread),
        wire.SetTyping: command(typing.set_typing),
        wire.GetTyping: command(typing.who),
    }


def event_handlers(*, blocks: Blocks) -> Mapping[type[Message], Handler]:
    """The ``user.events`` the service follows."""
    return {
        user_wire.UserBlocked: event(blocks.blocked),
        user_wire.UserUnblocked: event(blocks.unblocked),
    }
