"""Notification preferences: levels, muted conversations, do-not-disturb hours in a time zone.

Pure: values and rules only. A user's :class:`Audience` bundles everything the decision needs
about one recipient (their settings, their per-conversation overrides, whom they block), so it
can be cached and read as one value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from notification.domain.errors import InvalidPreferencesError

Level = Literal["all", "mentions", "none"]
LEVELS: tuple[Level, ...] = ("all", "mentions", "none")


def parse_clock(value: str) -> time:
    """``"HH:MM"`` as a :class:`time`."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def check_time_zone(name: str) -> str:
    """``name`` if it is a known IANA zone, else InvalidPreferencesError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise InvalidPreferencesError(f"unknown time zone {name!r}", field="time_zone") from e
    return name


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSettings:
    """A user's own settings; the defaults apply to a user who never set any."""

    level: Level = "all"
    dnd_start: time | None = None
    dnd_end: time | None = None
    time_zone: str = "UTC"
    webhook_url: str | None = None

    def __post_init__(self) -> None:
        if (self.dnd_start is None) != (self.dnd_end is None):
            raise InvalidPreferencesError("set both ends of do-not-disturb", field="dnd_start")

    def quiet_at(self, now: datetime) -> bool:
        """Whether ``now`` (aware) falls in the do-not-disturb hours of the user's zone."""
        if self.dnd_start is None or self.dnd_end is None or self.dnd_start == self.dnd_end:
            return False
        try:
            zone = ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")  # a zone removed from tzdata must not stop notifications
        local = now.astimezone(zone).time().replace(tzinfo=None)
        if self.dnd_start < self.dnd_end:
            return self.dnd_start <= local < self.dnd_end
        return local >= self.dnd_start or local < self.dnd_end  # the span crosses midnight

    def with_changes(self, **changes: object) -> UserSettings:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationSettings:
    """A user's override for one conversation."""

    muted_until: datetime | None = None
    level: Level | None = None

    def muted_at(self, now: datetime) -> bool:
        """Whether the conversation is muted at ``now``."""
        return self.muted_until is not None and now < self.muted_until


@dataclass(frozen=True, slots=True, kw_only=True)
class Audience:
    """Everything the decision needs to know about one recipient."""

    settings: UserSettings = field(default_factory=UserSettings)
    conversations: Mapping[str, ConversationSettings] = field(default_factory=dict)
    blocked: frozenset[str] = frozenset()

    def level_in(self, conversation_id: str) -> Level:
        """The level that applies in one conversation (its override, else the user's)."""
        override = self.conversations.get(conversation_id)
        if override is not None and override.level is not None:
            return override.level
        return self.settings.level

    def muted_in(self, conversation_id: str, now: datetime) -> bool:
        """Whether the user muted this conversation until after ``now``."""
        override = self.conversations.get(conversation_id)
        return override is not None and override.muted_at(now)
