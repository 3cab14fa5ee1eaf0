"""Messages of the notification service: listing and reading notifications, their events.

Commands go to ``notification.commands`` and events to ``notification.events``, both partitioned
by user id. ``NotificationCreated`` and ``NotificationsRead`` are also published on the user's
personal channel ``rt:{user:<id>}``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from contracts.base import Command, Event, Id, UtcDatetime

__all__ = [
    "GetUnreadCount",
    "ListNotifications",
    "MarkNotificationsRead",
    "Notification",
    "NotificationCreated",
    "NotificationList",
    "NotificationsRead",
    "UnreadCount",
]

COMMANDS = "notification.commands"
EVENTS = "notification.events"

NotificationKind = Literal["message", "mention", "member_added"]
Count = Annotated[int, msgspec.Meta(ge=0)]


class Notification(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One notification; ``count`` > 1 when several messages were coalesced."""

    id: Id
    user_id: Id
    kind: NotificationKind
    created_at: UtcDatetime
    conversation_id: Id | None = None
    sender_id: Id | None = None
    seq: Annotated[int, msgspec.Meta(ge=0)] | None = None
    count: Annotated[int, msgspec.Meta(ge=1)] = 1
    preview: Annotated[str, msgspec.Meta(max_length=200)] = ""
    read: bool = False


class NotificationList(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A page of notifications, newest first."""

    items: Annotated[list[Notification], msgspec.Meta(max_length=100)]
    next: Annotated[str, msgspec.Meta(max_length=256)] | None = None


class UnreadCount(msgspec.Struct, frozen=True, kw_only=True):
    """A user's unread badge count."""

    count: Count


class ListNotifications(Command, frozen=True, kw_only=True):
    """A user's notifications, newest first."""

    TYPE = "notification.list_notifications"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = NotificationList

    user_id: Id
    cursor: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 50


class MarkNotificationsRead(Command, frozen=True, kw_only=True):
    """Mark read by ids, a whole conversation, or everything (``all``)."""

    TYPE = "notification.mark_read"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = UnreadCount

    user_id: Id
    ids: Annotated[list[Id], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    conversation_id: Id | None = None
    all: bool = False


class GetUnreadCount(Command, frozen=True, kw_only=True):
    """A user's unread badge count."""

    TYPE = "notification.get_unread_count"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = UnreadCount

    user_id: Id


class NotificationCreated(Event, frozen=True, kw_only=True):
    """A notification was created (or a coalesced one grew)."""

    TYPE = "notification.notification_created"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    notification: Notification
    unread_count: Count


class NotificationsRead(Event, frozen=True, kw_only=True):
    """Some of a user's notifications were marked read."""

    TYPE = "notification.notifications_read"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    ids: Annotated[list[Id], msgspec.Meta(max_length=1000)] = msgspec.field(default_factory=list)
    conversation_id: Id | None = None
    unread_count: Count
