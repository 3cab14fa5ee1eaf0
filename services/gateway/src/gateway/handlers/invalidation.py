"""Which cached responses each event makes stale (tags of :mod:`gateway.handlers.responses`).

A user's notifications and unread count are not cached at the gateway: they change with nearly
every message in the user's conversations, so an entry would seldom be read before the next
change dropped it, while every notification would cost the fleet an invalidation. They are
answered fresh (the unread count from notification's Redis counter), still with an ``ETag``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from contracts import chat, user
from contracts.base import Envelope, Event
from gateway.handlers.responses import ResponseCache


def tags_of(event: Event) -> list[str]:
    """The cache tags an event invalidates (empty for events that change nothing cached)."""
    match event:
        case user.ProfileUpdated(user_id=uid):
            return [f"profile:{uid}"]
        case user.PreferencesUpdated(user_id=uid):
            # notification takes its level from these preferences
            return [f"prefs:{uid}", f"nprefs:{uid}"]
        case user.ContactAdded(user_id=uid) | user.ContactRemoved(user_id=uid):
            return [f"contacts:{uid}"]
        case user.UserBlocked(user_id=uid) | user.UserUnblocked(user_id=uid):
            # the blocker's presence is hidden from (or shown again to) the blocked user
            return [f"blocks:{uid}", f"presence:{uid}"]
        case user.PresenceChanged(user_id=uid):
            return [f"presence:{uid}"]
        case chat.ConversationCreated(creator_id=creator, member_ids=members):
            return [f"convs:{m}" for m in dict.fromkeys([creator, *members])]
        case (
            chat.MemberAdded(conversation_id=cid, user_id=uid)
            | chat.MemberRemoved(conversation_id=cid, user_id=uid)
        ):
            return [f"conv:{cid}", f"convs:{uid}"]
        case (
            chat.MessagePosted(conversation_id=cid)
            | chat.MessageEdited(conversation_id=cid)
            | chat.MessageDeleted(conversation_id=cid)
            | chat.ReadUpdated(conversation_id=cid)
        ):
            return [f"conv:{cid}"]
    return []


INVALIDATING_EVENTS: tuple[type[Event], ...] = (
    user.ProfileUpdated,
    user.PreferencesUpdated,
    user.ContactAdded,
    user.ContactRemoved,
    user.UserBlocked,
    user.UserUnblocked,
    user.PresenceChanged,
    chat.ConversationCreated,
    chat.MemberAdded,
    chat.MemberRemoved,
    chat.MessagePosted,
    chat.MessageEdited,
    chat.MessageDeleted,
    chat.ReadUpdated,
)
"""The events :func:`tags_of` knows, i.e. those the ``gateway.cache`` consumer reads."""


def invalidation_handlers(
    responses: ResponseCache,
) -> dict[type[Any], Callable[[Any, Envelope], Awaitable[None]]]:
    """A bus handler per invalidating event: drop the cached responses it makes stale."""

    async def invalidate(event: Event, _: Envelope) -> None:
        tags = tags_of(event)
        if tags:
            await responses.invalidate(tags)

    return dict.fromkeys(INVALIDATING_EVENTS, invalidate)
