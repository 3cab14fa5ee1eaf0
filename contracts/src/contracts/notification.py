"""Messages of the notification service: listing and reading notifications, their events.

Commands go to ``notification.commands`` and events to ``notification.events``, both partitioned
by user id. ``NotificationCreated`` and ``NotificationsRead`` are also published on the user's
personal channel ``rt:{user:<id>}``. ``DeliveryRequested`` travels on ``notification.delivery``,
the service's own queue of outbound deliveries, read only by its delivery workers (declared here
so that the operator tools, the ACLs and the AsyncAPI document know it).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from contracts.base import Command, Event, Id, UtcDatetime

__all__ = [
    "ConversationNotifications",
    "DeliveryRequested",
    "GetConversationNotifications",
    "GetNotificationPreferences",
    "GetUnreadCount",
    "ListNotifications",
    "MarkNotificationsRead",
    "Notification",
    "NotificationCreated",
    "NotificationList",
    "NotificationPreferences",
    "NotificationsRead",
    "SetConversationNotifications",
    "SetViewing",
    "UnreadCount",
    "UpdateNotificationPreferences",
]

COMMANDS = "notification.commands"
EVENTS = "notification.events"
DELIVERY = "notification.delivery"

NotificationKind = Literal["message", "mention", "member_added"]
Count = Annotated[int, msgspec.Meta(ge=0)]
NotificationLevel = Literal["all", "mentions", "none"]
# "HH:MM", 24-hour clock, in the user's time zone.
ClockTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
WebhookUrl = Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^https?://")]


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
    updated_at: UtcDatetime | None = None
    """When the notification last grew (a coalesced message arrived); sorts the list."""


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


class DeliveryRequested(Event, frozen=True, kw_only=True):
    """Deliver one notification on one outbound channel (the service's delivery workers do)."""

    TYPE = "notification.delivery_requested"
    STREAM = DELIVERY
    KEY = "user_id"

    user_id: Id
    channel: Literal["in_app", "log", "webhook"]
    notification: Notification
    webhook_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None


class NotificationPreferences(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A user's notification settings (defaults when never set).

    ``level``: ``all`` messages, only ``mentions``, or ``none``. Between ``dnd_start`` and
    ``dnd_end`` (in ``time_zone``; the span may cross midnight) notifications are stored and
    counted but not pushed to outbound channels. ``webhook_url`` adds the webhook channel.

    ``webhook_secret`` (``whsec_<base64>``, Standard Webhooks) signs the webhook's deliveries. It
    is shown once: only in the reply to the update that set the webhook URL or rotated the
    secret, never read back later.
    """

    level: NotificationLevel = "all"
    dnd_start: ClockTime | None = None
    dnd_end: ClockTime | None = None
    time_zone: TimeZone = "UTC"
    webhook_url: WebhookUrl | None = None
    webhook_secret: Annotated[str, msgspec.Meta(max_length=256)] | None = None


class ConversationNotifications(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A user's settings for one conversation: muted until a time, or another level."""

    conversation_id: Id
    muted_until: UtcDatetime | None = None
    level: NotificationLevel | None = None


class GetNotificationPreferences(Command, frozen=True, kw_only=True):
    """A user's notification preferences."""

    TYPE = "notification.get_preferences"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = NotificationPreferences

    user_id: Id


class UpdateNotificationPreferences(Command, frozen=True, kw_only=True):
    """Change notification preferences; fields left None are unchanged (``clear_*`` unset)."""

    TYPE = "notification.update_preferences"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = NotificationPreferences

    user_id: Id
    level: NotificationLevel | None = None
    dnd_start: ClockTime | None = None
    dnd_end: ClockTime | None = None
    time_zone: TimeZone | None = None
    webhook_url: WebhookUrl | None = None
    clear_dnd: bool = False
    clear_webhook: bool = False
    rotate_webhook_secret: bool = False
    """A new webhook secret (returned once) replaces the old one; setting a URL does it too."""


class SetConversationNotifications(Command, frozen=True, kw_only=True):
    """Mute a conversation until a time (None: unmute) and/or set its level (None: default)."""

    TYPE = "notification.set_conversation"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = ConversationNotifications

    user_id: Id
    conversation_id: Id
    muted_until: UtcDatetime | None = None
    level: NotificationLevel | None = None


class GetConversationNotifications(Command, frozen=True, kw_only=True):
    """A user's settings for one conversation (defaults when never set)."""

    TYPE = "notification.get_conversation"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = ConversationNotifications

    user_id: Id
    conversation_id: Id


class SetViewing(Command, frozen=True, kw_only=True):
    """The gateway says which conversation a user has open (None: none); refresh it to keep it.

    A user online and viewing a conversation is not notified of its messages.
    """

    TYPE = "notification.set_viewing"
    STREAM = COMMANDS
    KEY = "user_id"
    TIMEOUT = 2.0

    user_id: Id
    conversation_id: Id | None = None
