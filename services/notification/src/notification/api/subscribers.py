"""Subscribers: decode (the bus did), call one handler, map errors to replies or dead letters.

Two consumers of the ``notification`` group: one over ``notification.commands``, ``chat.events``
and ``user.events``; one over the private delivery queue (its workers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from contracts import chat, user
from contracts import notification as cmd
from contracts.base import Envelope, ErrorCode, Message, Reply
from notification.domain.errors import (
    DeliveryFailedError,
    InvalidCursorError,
    InvalidPreferencesError,
)
from notification.handlers.delivering import DeliveryHandlers
from notification.handlers.messages import MessageHandlers
from notification.handlers.preferences import PreferenceHandlers
from notification.handlers.projections import ProjectionHandlers
from notification.handlers.reading import ReadingHandlers
from notification.store.redis_delivery import DeliveryRequested, job_of
from shared.bus import Consumer, ConsumerSettings, Handler, PermanentError
from shared.bus.metrics import process_metrics
from shared.redis.client import AnyRedis

GROUP = "notification"


@dataclass(frozen=True, slots=True, kw_only=True)
class Handlers:
    """Every use-case object the subscribers call."""

    messages: MessageHandlers
    reading: ReadingHandlers
    preferences: PreferenceHandlers
    projections: ProjectionHandlers
    delivering: DeliveryHandlers


def _command(call: Callable[[Any], Awaitable[Any]]) -> Handler:
    async def handle(message: Any, envelope: Envelope) -> Any:
        try:
            return await call(message)
        except InvalidPreferencesError as e:
            return Reply.failure(ErrorCode.INVALID, str(e), field=e.field)
        except InvalidCursorError as e:
            return Reply.failure(ErrorCode.INVALID, str(e), field="cursor")

    return handle


def _event(call: Callable[[Any, str], Awaitable[Any]]) -> Handler:
    async def handle(message: Any, envelope: Envelope) -> None:
        await call(message, envelope.id)

    return handle


def fleet_handlers(h: Handlers) -> dict[type[Message], Handler]:
    """Handlers of the commands and of the chat and user events this service reads."""
    return {
        cmd.ListNotifications: _command(h.reading.list_notifications),
        cmd.MarkNotificationsRead: _command(h.reading.mark_read),
        cmd.GetUnreadCount: _command(lambda c: h.reading.get_unread_count(c.user_id)),
        cmd.GetNotificationPreferences: _command(lambda c: h.preferences.get(c.user_id)),
        cmd.UpdateNotificationPreferences: _command(h.preferences.update),
        cmd.GetConversationNotifications: _command(h.preferences.get_conversation),
        cmd.SetConversationNotifications: _command(h.preferences.set_conversation),
        cmd.SetViewing: _command(h.projections.set_viewing),
        chat.MessagePosted: _event(h.messages.on_message_posted),
        chat.ReadUpdated: _event(h.reading.on_read_updated),
        chat.ConversationCreated: _event(h.projections.on_conversation_created),
        chat.MemberAdded: _event(h.projections.on_member_added),
        chat.MemberRemoved: _event(h.projections.on_member_removed),
        user.PresenceChanged: _event(h.projections.on_presence_changed),
        user.UserBlocked: _event(h.preferences.on_user_blocked),
        user.UserUnblocked: _event(h.preferences.on_user_unblocked),
        user.PreferencesUpdated: _event(h.preferences.on_preferences_updated),
        user.ProfileUpdated: _event(h.preferences.on_profile_updated),
    }


def delivery_handler(delivering: DeliveryHandlers) -> Handler:
    """The delivery worker: a channel that gave up dead-letters the job at once."""

    async def handle(message: DeliveryRequested, envelope: Envelope) -> None:
        try:
            await delivering.deliver(job_of(message))
        except DeliveryFailedError as e:
            raise PermanentError(str(e)) from e

    return handle


# A posted message is claimed in the database in the transaction that notifies (a copy finds the
# claim and changes nothing), and one that notifies nobody writes nothing: the bus keeps no
# "handled" marks for it (no read of marks per batch, no mark written per message).
IDEMPOTENT = frozenset({chat.MessagePosted.TYPE})


def build_consumers(
    client: AnyRedis,
    handlers: Handlers,
    *,
    instance_id: str,
    settings: ConsumerSettings | None = None,
    delivery_settings: ConsumerSettings | None = None,
) -> list[Consumer]:
    """The service's consumers (not started)."""
    fleet = Consumer(
        client,
        group=GROUP,
        handlers=fleet_handlers(handlers),
        metrics=process_metrics(),
        instance_id=instance_id,
        settings=(settings or ConsumerSettings()).model_copy(update={"idempotent": IDEMPOTENT}),
    )
    delivery = Consumer(
        client,
        group=GROUP,
        handlers={DeliveryRequested: delivery_handler(handlers.delivering)},
        metrics=process_metrics(),
        instance_id=instance_id,
        settings=delivery_settings or settings,
    )
    return [fleet, delivery]
