"""The JSON shapes clients rely on, built from the services' typed results.

Contract structs omit default values on the wire; clients get every field, always (``null``,
``false`` or ``[]`` when unset), so these functions spell each shape out.
"""

from __future__ import annotations

from typing import Any

from contracts.auth import SessionInfo, TokenPair
from contracts.chat import ChatMessage, Conversation
from contracts.notification import Notification, NotificationPreferences
from contracts.user import Preferences, Presence, Profile
from gateway.handlers.realtime_frames import message_object, notification_object

Json = dict[str, Any]


def tokens(pair: TokenPair) -> Json:
    """``{user_id, access_token, refresh_token, expires_in}``."""
    return {
        "user_id": pair.user_id,
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "expires_in": pair.expires_in,
        "token_type": "Bearer",
    }


def profile(p: Profile) -> Json:
    """A user's public profile."""
    return {
        "id": p.user_id,
        "user_id": p.user_id,
        "username": p.username,
        "display_name": p.display_name,
        "avatar_url": p.avatar_url,
        "bio": p.bio,
        "time_zone": p.time_zone,
        "updated_at": p.updated_at,
    }


def preferences(p: Preferences) -> Json:
    """A user's preferences."""
    return {
        "language": p.language,
        "theme": p.theme,
        "notifications": p.notifications,
        "notification_sound": p.notification_sound,
    }


def presence(p: Presence) -> Json:
    """``{user_id, status, last_seen}``."""
    return {"user_id": p.user_id, "status": p.status, "last_seen": p.last_seen}


def session(s: SessionInfo, *, current: str) -> Json:
    """One live session; ``current`` marks the caller's own."""
    return {
        "id": s.session_id,
        "created_at": s.created_at,
        "last_used_at": s.last_used_at,
        "device": s.client.device,
        "user_agent": s.client.user_agent,
        "address": s.client.address,
        "current": s.session_id == current,
    }


def message(m: ChatMessage) -> Json:
    """``{id, conversation_id, seq, sender_id, body, client_msg_id, mentions, created_at,
    edited_at, deleted}``: the same object WebSocket frames carry."""
    return message_object(m)


def conversation(c: Conversation) -> Json:
    """``{id, kind, title, member_ids, last_seq, unread_count, last_message}``."""
    return {
        "id": c.id,
        "kind": c.kind,
        "title": c.title,
        "member_ids": list(c.member_ids),
        "last_seq": c.last_seq,
        "unread_count": c.unread_count,
        "last_message": message(c.last_message) if c.last_message else None,
    }


def notification(n: Notification) -> Json:
    """``{id, kind, conversation_id, read, created_at}``, the details the service gives, and
    ``updated_at`` (a coalesced notification grows): the WebSocket object plus that field."""
    return {**notification_object(n), "updated_at": n.updated_at}


def notification_preferences(p: NotificationPreferences) -> Json:
    """A user's notification preferences (``webhook_secret`` only in the answer to the update
    that issued it: it is shown once)."""
    shape: Json = {
        "level": p.level,
        "dnd_start": p.dnd_start,
        "dnd_end": p.dnd_end,
        "time_zone": p.time_zone,
        "webhook_url": p.webhook_url,
    }
    if p.webhook_secret is not None:
        shape["webhook_secret"] = p.webhook_secret
    return shape


def page(items: list[Json], next_cursor: str | None = None) -> Json:
    """``{items: [...], next: cursor|null}``."""
    return {"items": items, "next": next_cursor}
