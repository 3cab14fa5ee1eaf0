"""Profile use cases: create from registration, read one or many, update, search."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import auth as auth_contracts
from contracts import user as wire
from contracts.base import Envelope
from user.domain.errors import NotFoundError
from user.domain.profiles import (
    Profile,
    ProfileChanges,
    apply_changes,
    new_profile,
    valid_search_prefix,
)
from user.store.protocols import EventOutbox, PersonalChannels, ProfileStore


class ProfileHandlers:
    """Handlers of profile commands and of ``auth.account_registered``.

    Each change's ``user.profile_updated`` is committed with it (outbox) and appended after.
    """

    def __init__(
        self,
        profiles: ProfileStore,
        events: EventOutbox,
        channels: PersonalChannels | None = None,
    ) -> None:
        self._profiles = profiles
        self._events = events
        self._channels = channels

    async def account_registered(
        self, message: auth_contracts.AccountRegistered, envelope: Envelope
    ) -> None:
        """Create the profile once per registration (a redelivery changes nothing)."""
        profile = new_profile(
            message.user_id, message.username, message.display_name, now=datetime.now(UTC)
        )
        staged = [
            self._events.stage(
                wire.ProfileUpdated(user_id=profile.user_id, profile=to_wire(profile))
            )
        ]
        if await self._profiles.create(profile, message_id=envelope.id, events=staged):
            await self._events.send(staged)

    async def get_profile(self, command: wire.GetProfile, _: Envelope) -> wire.Profile:
        """One profile; NotFoundError if there is none."""
        return to_wire(await self._existing(command.user_id))

    async def get_profiles(self, command: wire.GetProfiles, _: Envelope) -> wire.ProfileList:
        """Many profiles in one call, in the order asked; unknown ids are left out."""
        found = await self._profiles.get_many(command.user_ids)
        ordered = [found[uid] for uid in dict.fromkeys(command.user_ids) if uid in found]
        return wire.ProfileList(items=[to_wire(p) for p in ordered])

    async def update_profile(self, command: wire.UpdateProfile, _: Envelope) -> wire.Profile:
        """Validate and apply changes; announce the new profile when anything changed."""
        current = await self._existing(command.user_id)
        changes = ProfileChanges(
            display_name=command.display_name,
            avatar_url=command.avatar_url,
            bio=command.bio,
            time_zone=command.time_zone,
        )
        updated = apply_changes(current, changes, now=datetime.now(UTC))
        if updated is not current:
            event = wire.ProfileUpdated(user_id=updated.user_id, profile=to_wire(updated))
            staged = [self._events.stage(event)]
            await self._profiles.save(updated, events=staged)
            await self._events.send(staged)
            if self._channels is not None:
                await self._channels.send(updated.user_id, event)  # the user's other devices
        return to_wire(updated)

    async def search_users(self, command: wire.SearchUsers, _: Envelope) -> wire.ProfileList:
        """Profiles whose username starts with the prefix (case-insensitive)."""
        prefix = valid_search_prefix(command.prefix)
        found = await self._profiles.search(prefix, limit=command.limit)
        return wire.ProfileList(items=[to_wire(p) for p in found])

    async def _existing(self, user_id: str) -> Profile:
        profile = await self._profiles.get(user_id)
        if profile is None:
            raise NotFoundError(f"no user {user_id}")
        return profile


def to_wire(profile: Profile) -> wire.Profile:
    """The contract form of a profile."""
    return wire.Profile(
        user_id=profile.user_id,
        username=profile.username,
        display_name=profile.display_name,
        avatar_url=profile.avatar_url,
        bio=profile.bio,
        time_zone=profile.time_zone,
        updated_at=profile.updated_at,
    )
