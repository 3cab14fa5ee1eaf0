"""Small builders the integration tests share (random ids so runs never collide)."""

from __future__ import annotations

import uuid

from chat.bootstrap import Chat
from contracts import chat as wire


def uid(prefix: str = "u") -> str:
    """A fresh id."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def group(chat: Chat, owner: str, *others: str) -> str:
    """A new group of ``owner`` and ``others``; returns its id."""
    conv = await chat.conversations.create(
        wire.CreateConversation(
            creator_id=owner, kind="group", member_ids=list(others), title="team"
        )
    )
    return conv.id


async def post(chat: Chat, conv: str, sender: str, body: str = "hi") -> wire.ChatMessage:
    """Post a message with a fresh client message id."""
    result = await chat.messages.post(
        wire.PostMessage(sender_id=sender, conversation_id=conv, client_msg_id=uid("c"), body=body)
    )
    return result.message
