"""Typed user preferences with their defaults and validation."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal, get_args

from user.domain.errors import InvalidInputError

Theme = Literal["system", "light", "dark"]
NotificationLevel = Literal["all", "mentions", "none"]

# BCP 47 in the shape clients send: language, optional script, optional region ("pt-BR").
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$")


@dataclass(frozen=True, kw_only=True, slots=True)
class Preferences:
    """A user's preferences; the defaults are what a user who never chose gets."""

    language: str = "en"
    theme: Theme = "system"
    notifications: NotificationLevel = "all"
    notification_sound: bool = True


DEFAULTS = Preferences()


@dataclass(frozen=True, kw_only=True, slots=True)
class PreferenceChanges:
    """Preferences to change; ``None`` leaves one as it is."""

    language: str | None = None
    theme: str | None = None
    notifications: str | None = None
    notification_sound: bool | None = None


def apply_preferences(current: Preferences, changes: PreferenceChanges) -> Preferences:
    """``current`` with ``changes`` validated and applied; raises InvalidInputError."""
    values: dict[str, object] = {}
    if changes.language is not None:
        if not _LANGUAGE.match(changes.language):
            raise InvalidInputError("language", "a BCP 47 tag such as 'en' or 'pt-BR'")
        values["language"] = changes.language
    if changes.theme is not None:
        if changes.theme not in get_args(Theme):
            raise InvalidInputError("theme", f"one of {', '.join(get_args(Theme))}")
        values["theme"] = changes.theme
    if changes.notifications is not None:
        if changes.notifications not in get_args(NotificationLevel):
            levels = ", ".join(get_args(NotificationLevel))
            raise InvalidInputError("notifications", f"one of {levels}")
        values["notifications"] = changes.notifications
    if changes.notification_sound is not None:
        values["notification_sound"] = changes.notification_sound
    return dataclasses.replace(current, **values)  # type: ignore[arg-type]
