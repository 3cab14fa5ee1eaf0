"""Server frames: what a channel message becomes on a client's WebSocket.

Each function returns the frame as a JSON-ready dict; :func:`server_frame` picks the one for a
message and says whether it may be dropped under backpressure (typing, presence). The shapes are
the public protocol (docs/websocket.md): a message frame carries the message object, complete
with every field, under ``message`` (the same shape as the REST API's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from contracts import chat, notification, user
from contracts.base import Message

_json = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class ServerFrame:
    """A frame for a client: ``data`` (a dict with ``type``) and its drop policy."""

    data: dict[str, Any]
    droppable: bool = False
    born: float = 0.0
    """Unix time the live message it carries was created (``message.posted``), else 0."""

    def encode(self) -> str:
        """The frame as JSON text."""
        return encode(self.data)


def encode(data: dict[str, Any]) -> str:
    """JSON text of a frame (datetimes as RFC 3339)."""
    return _json.encode(data).decode()


def message_object(m: chat.ChatMessage) -> dict[str, Any]:
    """A message as clients see it: every field, defaults included."""
    return {
        "id": m.id,
        "conversation_id": m.conversation_id,
        "seq": m.seq,
        "sender_id": m.sender_id,
        "body": m.body,
        "client_msg_id": m.client_msg_id,
        "mentions": list(m.mentions),
        "created_at": m.created_at,
        "edited_at": m.edited_at,
        "deleted": m.deleted,
    }


def notification_object(n: notification.Notification) -> dict[str, Any]:
    """A notification as clients see it."""
    return {
        "id": n.id,
        "kind": n.kind,
        "conversation_id": n.conversation_id,
        "sender_id": n.sender_id,
        "seq": n.seq,
        "count": n.count,
        "preview": n.preview,
        "read": n.read,
        "created_at": n.created_at,
    }


def posted(m: chat.ChatMessage) -> dict[str, Any]:
    """The ``message.posted`` frame of a message (live or recovered)."""
    return {
        "type": "message.posted",
        "conversation_id": m.conversation_id,
        "message": message_object(m),
    }


_last: tuple[Message | None, ServerFrame | None, str] = (None, None, "")


def shared_frame(message: Message) -> tuple[ServerFrame, str] | None:
    """:func:`server_frame` and its JSON text, made once per channel message.

    The hub hands the same message object to every socket holding the channel, one after the
    other: the last message's frame and text are kept (by identity, with a reference, so no
    other object can pass for it), and a 1,000-member group's post is encoded once, not once
    per socket. Frames are never changed after they are made, so sockets can share them.
    """
    global _last
    seen, frame, text = _last
    if seen is message:
        return None if frame is None else (frame, text)
    frame = server_frame(message)
    text = "" if frame is None else frame.encode()
    _last = (message, frame, text)
    return None if frame is None else (frame, text)


def server_frame(message: Message) -> ServerFrame | None:
    """The client frame of a channel message, or None for types clients do not see."""
    match message:
        case chat.MessagePosted():
            m = message.message
            return ServerFrame(posted(m), born=m.created_at.timestamp())
        case chat.MessageEdited():
            m = message.message
            data = {"type": "message.edited", "conversation_id": m.conversation_id}
            return ServerFrame({**data, "message": message_object(m)})
        case chat.MessageDeleted():
            return ServerFrame(_deleted(message))
        case chat.TypingChanged():
            return ServerFrame(
                {
                    "type": "typing",
                    "conversation_id": message.conversation_id,
                    "user_id": message.user_id,
                    "typing": message.typing,
                },
                droppable=True,
            )
        case user.PresenceChanged():
            return ServerFrame(
                {
                    "type": "presence",
                    "user_id": message.user_id,
                    "status": message.status,
                    "last_seen": message.last_seen,
                },
                droppable=True,
            )
        case _:
            return _other(message)


def _other(message: Message) -> ServerFrame | None:
    match message:
        case chat.ReadUpdated():
            data: dict[str, Any] = {
                "type": "read",
                "conversation_id": message.conversation_id,
                "user_id": message.user_id,
                "seq": message.seq,
            }
        case chat.MemberAdded():
            data = {
                "type": "member.added",
                "conversation_id": message.conversation_id,
                "user_id": message.user_id,
                "role": message.role,
                "added_by": message.added_by,
            }
        case chat.MemberRemoved():
            data = {
                "type": "member.removed",
                "conversation_id": message.conversation_id,
                "user_id": message.user_id,
                "removed_by": message.removed_by,
            }
        case chat.ConversationCreated():
            data = {
                "type": "conversation.created",
                "conversation_id": message.conversation_id,
                "kind": message.kind,
                "title": message.title,
                "creator_id": message.creator_id,
                "member_ids": list(message.member_ids),
            }
        case _:
            return _personal(message)
    return ServerFrame(data)


def _personal(message: Message) -> ServerFrame | None:
    match message:
        case notification.NotificationCreated():
            data: dict[str, Any] = {
                "type": "notification",
                "notification": notification_object(message.notification),
                "unread_count": message.unread_count,
            }
        case notification.NotificationsRead():
            data = {
                "type": "notification.read",
                "ids": list(message.ids),
                "conversation_id": message.conversation_id,
                "unread_count": message.unread_count,
            }
        case user.ProfileUpdated():
            p = message.profile
            data = {
                "type": "profile.updated",
                "user_id": message.user_id,
                "profile": {
                    "user_id": p.user_id,
                    "username": p.username,
                    "display_name": p.display_name,
                    "avatar_url": p.avatar_url,
                    "bio": p.bio,
                    "time_zone": p.time_zone,
                },
            }
        case _:
            return None
    return ServerFrame(data)


def _deleted(event: chat.MessageDeleted) -> dict[str, Any]:
    # The event has no full message; the tombstone carries what a client needs to update its
    # copy (id, seq, deleted), the rest it already has.
    return {
        "type": "message.deleted",
        "conversation_id": event.conversation_id,
        "seq": event.seq,
        "message_id": event.message_id,
        "deleted_by": event.deleted_by,
        "message": {
            "id": event.message_id,
            "conversation_id": event.conversation_id,
            "seq": event.seq,
            "body": "",
            "deleted": True,
        },
    }
