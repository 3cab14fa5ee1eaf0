"""Preference use cases."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import user as wire
from contracts.base import Envelope
from user.domain.errors import NotFoundError
from user.domain.preferences import DEFAULTS, PreferenceChanges, Preferences, apply_preferences
from user.store.protocols import EventOutbox, PreferenceStore, ProfileStore


class PreferenceHandlers:
    """Handlers of preference commands."""

    def __init__(
        self, preferences: PreferenceStore, profiles: ProfileStore, events: EventOutbox
    ) -> None:
        self._preferences = preferences
        self._profiles = profiles
        self._events = events

    async def get_preferences(self, command: wire.GetPreferences, _: Envelope) -> wire.Preferences:
        """The user's preferences, defaults for what was never set."""
        return to_wire(await self._preferences.get(command.user_id) or DEFAULTS)

    async def update_preferences(
        self, command: wire.UpdatePreferences, _: Envelope
    ) -> wire.Preferences:
        """Validate and store changes; announce them when anything changed."""
        if await self._profiles.get(command.user_id) is None:
            raise NotFoundError(f"no user {command.user_id}")
        current = await self._preferences.get(command.user_id) or DEFAULTS
        changes = PreferenceChanges(
            language=command.language,
            theme=command.theme,
            notifications=command.notifications,
            notification_sound=command.notification_sound,
        )
        updated = apply_preferences(current, changes)
        if updated != current:
            event = wire.PreferencesUpdated(user_id=command.user_id, preferences=to_wire(updated))
            staged = [self._events.stage(event)]
            await self._preferences.save(
                command.user_id, updated, at=datetime.now(UTC), events=staged
            )
            await self._events.send(staged)
        return to_wire(updated)


def to_wire(preferences: Preferences) -> wire.Preferences:
    """The contract form of preferences."""
    return wire.Preferences(
        language=preferences.language,
        theme=preferences.theme,
        notifications=preferences.notifications,
        notification_sound=preferences.notification_sound,
    )
