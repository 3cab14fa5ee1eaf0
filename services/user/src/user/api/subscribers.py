"""The user service's bus subscribers: one consumer group over ``user.commands``,
``auth.events`` and ``gateway.events``. Thin: decode (the bus does), call one handler, map
errors (commands answer with a stable code; events retry or dead-letter)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from contracts import auth as auth_contracts
from contracts import gateway as gateway_contracts
from contracts import user as wire
from contracts.base import Envelope, ErrorCode, Message, Reply
from shared.bus import Consumer, ConsumerSettings, Handler, PermanentError
from shared.bus.metrics import process_metrics
from shared.redis.client import AnyRedis
from user.domain.errors import InvalidInputError, NotFoundError
from user.handlers.preferences import PreferenceHandlers
from user.handlers.presence import PresenceHandlers
from user.handlers.profiles import ProfileHandlers
from user.handlers.relationships import RelationshipHandlers

GROUP = "user"

Call = Callable[[Any, Envelope], Awaitable[Any]]


def command(handler: Call) -> Handler:
    """A command handler whose domain errors become failed replies with a stable code."""

    async def run(message: Any, envelope: Envelope) -> Any:
        try:
            return await handler(message, envelope)
        except InvalidInputError as e:
            return Reply.failure(ErrorCode.INVALID, e.reason, field=e.field)
        except NotFoundError as e:
            return Reply.failure(ErrorCode.NOT_FOUND, str(e))

    return run


def event(handler: Call) -> Handler:
    """An event handler: input no retry can fix is dead-lettered at once; the rest retries."""

    async def run(message: Any, envelope: Envelope) -> Any:
        try:
            return await handler(message, envelope)
        except InvalidInputError as e:
            raise PermanentError(str(e)) from e

    return run


def handler_table(
    profiles: ProfileHandlers,
    relationships: RelationshipHandlers,
    preferences: PreferenceHandlers,
    presence: PresenceHandlers,
) -> Mapping[type[Message], Handler]:
    """Every message the user group handles, and its handler."""
    return {
        wire.GetProfile: command(profiles.get_profile),
        wire.GetProfiles: command(profiles.get_profiles),
        wire.UpdateProfile: command(profiles.update_profile),
        wire.SearchUsers: command(profiles.search_users),
        wire.AddContact: command(relationships.add_contact),
        wire.RemoveContact: command(relationships.remove_contact),
        wire.ListContacts: command(relationships.list_contacts),
        wire.BlockUser: command(relationships.block_user),
        wire.UnblockUser: command(relationships.unblock_user),
        wire.ListBlocks: command(relationships.list_blocks),
        wire.GetPreferences: command(preferences.get_preferences),
        wire.UpdatePreferences: command(preferences.update_preferences),
        wire.GetPresence: command(presence.get_presence),
        auth_contracts.AccountRegistered: event(profiles.account_registered),
        gateway_contracts.ConnectionOpened: event(presence.device_seen),
        gateway_contracts.ConnectionHeartbeat: event(presence.device_seen),
        gateway_contracts.ConnectionClosed: event(presence.device_closed),
    }


def build_consumer(
    client: AnyRedis,
    handlers: Mapping[type[Message], Handler],
    *,
    instance_id: str,
    settings: ConsumerSettings | None = None,
) -> Consumer:
    """The consumer of the ``user`` group for this instance."""
    return Consumer(
        client,
        group=GROUP,
        handlers=handlers,
        metrics=process_metrics(),
        instance_id=instance_id,
        settings=settings,
        producer=GROUP,
    )
