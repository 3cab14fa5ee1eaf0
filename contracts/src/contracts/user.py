"""Messages of the user service: profile, relationship and presence commands and events.

Commands go to ``user.commands`` and events to ``user.events``, both partitioned by user id.
``PresenceChanged`` is also published on the personal channel ``rt:{user:<id>}`` of each online
contact.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from contracts.base import Command, Event, Id, UtcDatetime

__all__ = [
    "AddContact",
    "BlockUser",
    "ContactAdded",
    "ContactRemoved",
    "GetPreferences",
    "GetPresence",
    "GetProfile",
    "GetProfiles",
    "ListBlocks",
    "ListContacts",
    "Preferences",
    "PreferencesUpdated",
    "Presence",
    "PresenceChanged",
    "PresenceList",
    "Profile",
    "ProfileList",
    "ProfileUpdated",
    "RemoveContact",
    "SearchUsers",
    "UnblockUser",
    "UpdatePreferences",
    "UpdateProfile",
    "UserBlocked",
    "UserIdList",
    "UserUnblocked",
]

COMMANDS = "user.commands"
EVENTS = "user.events"

DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Username = Annotated[str, msgspec.Meta(min_length=3, max_length=32)]
AvatarUrl = Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^https?://")]
Bio = Annotated[str, msgspec.Meta(max_length=500)]
TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
UserIds = Annotated[list[Id], msgspec.Meta(min_length=1, max_length=100)]
PresenceStatus = Literal["online", "offline"]
Language = Annotated[str, msgspec.Meta(min_length=2, max_length=35)]
Theme = Literal["system", "light", "dark"]
NotificationLevel = Literal["all", "mentions", "none"]


class Profile(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A user's public profile."""

    user_id: Id
    username: Username
    display_name: DisplayName
    avatar_url: AvatarUrl | None = None
    bio: Bio = ""
    time_zone: TimeZone = "UTC"
    updated_at: UtcDatetime | None = None


class ProfileList(msgspec.Struct, frozen=True, kw_only=True):
    """Profiles, in the order asked (unknown ids are left out)."""

    items: Annotated[list[Profile], msgspec.Meta(max_length=100)]


class Presence(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Whether a user is online, and when they were last seen."""

    user_id: Id
    status: PresenceStatus
    last_seen: UtcDatetime | None = None


class PresenceList(msgspec.Struct, frozen=True, kw_only=True):
    """Presence of several users."""

    items: Annotated[list[Presence], msgspec.Meta(max_length=100)]


class GetProfile(Command, frozen=True, kw_only=True):
    """One profile."""

    TYPE = "user.get_profile"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = Profile

    user_id: Id


class GetProfiles(Command, frozen=True, kw_only=True):
    """Many profiles in one call."""

    TYPE = "user.get_profiles"
    STREAM = COMMANDS
    RESULT = ProfileList

    user_ids: UserIds


class SearchUsers(Command, frozen=True, kw_only=True):
    """Profiles whose username starts with ``prefix``."""

    TYPE = "user.search_users"
    STREAM = COMMANDS
    RESULT = ProfileList

    prefix: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20


class UpdateProfile(Command, frozen=True, kw_only=True):
    """Change profile fields; fields left None are unchanged."""

    TYPE = "user.update_profile"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = Profile

    user_id: Id
    display_name: DisplayName | None = None
    avatar_url: AvatarUrl | None = None
    bio: Bio | None = None
    time_zone: TimeZone | None = None


class AddContact(Command, frozen=True, kw_only=True):
    """Add ``contact_id`` to ``user_id``'s contacts."""

    TYPE = "user.add_contact"
    STREAM = COMMANDS
    KEY = "user_id"

    user_id: Id
    contact_id: Id


class RemoveContact(Command, frozen=True, kw_only=True):
    """Remove a contact."""

    TYPE = "user.remove_contact"
    STREAM = COMMANDS
    KEY = "user_id"

    user_id: Id
    contact_id: Id


class BlockUser(Command, frozen=True, kw_only=True):
    """``user_id`` blocks ``blocked_id``."""

    TYPE = "user.block_user"
    STREAM = COMMANDS
    KEY = "user_id"

    user_id: Id
    blocked_id: Id


class UnblockUser(Command, frozen=True, kw_only=True):
    """Lift a block."""

    TYPE = "user.unblock_user"
    STREAM = COMMANDS
    KEY = "user_id"

    user_id: Id
    blocked_id: Id


class GetPresence(Command, frozen=True, kw_only=True):
    """Presence of many users in one call, as ``viewer_id`` may see it: a user who blocked the
    viewer is reported ``offline`` without ``last_seen`` (as if never seen)."""

    TYPE = "user.get_presence"
    STREAM = COMMANDS
    RESULT = PresenceList

    user_ids: UserIds
    viewer_id: Id | None = None


class ProfileUpdated(Event, frozen=True, kw_only=True):
    """A profile was created or changed; carries the whole new profile."""

    TYPE = "user.profile_updated"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    profile: Profile


class PresenceChanged(Event, frozen=True, kw_only=True):
    """A user went online or offline (debounced)."""

    TYPE = "user.presence_changed"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    status: PresenceStatus
    last_seen: UtcDatetime | None = None


class ContactAdded(Event, frozen=True, kw_only=True):
    """``contact_id`` became a contact of ``user_id``."""

    TYPE = "user.contact_added"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    contact_id: Id


class ContactRemoved(Event, frozen=True, kw_only=True):
    """``contact_id`` is no longer a contact of ``user_id``."""

    TYPE = "user.contact_removed"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    contact_id: Id


class UserBlocked(Event, frozen=True, kw_only=True):
    """``user_id`` blocked ``blocked_id`` (no direct conversation, no notifications from them)."""

    TYPE = "user.user_blocked"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    blocked_id: Id


class UserUnblocked(Event, frozen=True, kw_only=True):
    """``user_id`` lifted the block on ``blocked_id``."""

    TYPE = "user.user_unblocked"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    blocked_id: Id


class UserIdList(msgspec.Struct, frozen=True, kw_only=True):
    """User ids (contacts or blocked users), oldest relationship first."""

    items: Annotated[list[Id], msgspec.Meta(max_length=10_000)]


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    """A user's preferences; a user who never set them gets these defaults."""

    language: Language = "en"
    theme: Theme = "system"
    notifications: NotificationLevel = "all"
    notification_sound: bool = True


class ListContacts(Command, frozen=True, kw_only=True):
    """``user_id``'s contacts."""

    TYPE = "user.list_contacts"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = UserIdList

    user_id: Id


class ListBlocks(Command, frozen=True, kw_only=True):
    """The users ``user_id`` has blocked."""

    TYPE = "user.list_blocks"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = UserIdList

    user_id: Id


class GetPreferences(Command, frozen=True, kw_only=True):
    """``user_id``'s preferences (defaults if never set)."""

    TYPE = "user.get_preferences"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = Preferences

    user_id: Id


class UpdatePreferences(Command, frozen=True, kw_only=True):
    """Change preferences; fields left None are unchanged."""

    TYPE = "user.update_preferences"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = Preferences

    user_id: Id
    language: Language | None = None
    theme: Theme | None = None
    notifications: NotificationLevel | None = None
    notification_sound: bool | None = None


class PreferencesUpdated(Event, frozen=True, kw_only=True):
    """A user's preferences changed (notification uses the notification defaults)."""

    TYPE = "user.preferences_updated"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    preferences: Preferences
