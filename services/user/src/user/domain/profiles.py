"""Profiles: the public face of a user, and the rules a change must follow."""

from __future__ import annotations

import dataclasses
import functools
import unicodedata
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from user.domain.errors import InvalidInputError

DISPLAY_NAME_MAX = 64
BIO_MAX = 500
AVATAR_URL_MAX = 2048
SEARCH_PREFIX_MAX = 32


@dataclass(frozen=True, kw_only=True, slots=True)
class Profile:
    """A user's profile as the service stores it."""

    user_id: str
    username: str
    display_name: str
    avatar_url: str | None = None
    bio: str = ""
    time_zone: str = "UTC"
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class ProfileChanges:
    """Fields to change; ``None`` leaves a field as it is."""

    display_name: str | None = None
    avatar_url: str | None = None
    bio: str | None = None
    time_zone: str | None = None


def new_profile(user_id: str, username: str, display_name: str, *, now: datetime) -> Profile:
    """The profile of a freshly registered account (display name falls back to the username)."""
    try:
        name = valid_display_name(display_name)
    except InvalidInputError:
        name = username  # auth validated its own bounds; ours are stricter, never fail creation
    return Profile(
        user_id=user_id,
        username=username,
        display_name=name,
        created_at=now,
        updated_at=now,
    )


def apply_changes(profile: Profile, changes: ProfileChanges, *, now: datetime) -> Profile:
    """``profile`` with ``changes`` validated and applied; raises InvalidInputError."""
    values: dict[str, object] = {}
    if changes.display_name is not None:
        values["display_name"] = valid_display_name(changes.display_name)
    if changes.avatar_url is not None:
        values["avatar_url"] = valid_avatar_url(changes.avatar_url)
    if changes.bio is not None:
        values["bio"] = valid_bio(changes.bio)
    if changes.time_zone is not None:
        values["time_zone"] = valid_time_zone(changes.time_zone)
    if not values or all(getattr(profile, k) == v for k, v in values.items()):
        return profile
    return dataclasses.replace(profile, **values, updated_at=now)  # type: ignore[arg-type]


def _has_control(text: str, *, allow_newlines: bool = False) -> bool:
    allowed = {"\n"} if allow_newlines else set()
    return any(unicodedata.category(c) in {"Cc", "Cf"} and c not in allowed for c in text)


def valid_display_name(value: str) -> str:
    """A display name trimmed and normalised (NFC); 1..64 printable characters."""
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise InvalidInputError("display_name", "must not be blank")
    if len(name) > DISPLAY_NAME_MAX:
        raise InvalidInputError("display_name", f"at most {DISPLAY_NAME_MAX} characters")
    if _has_control(name):
        raise InvalidInputError("display_name", "must not contain control characters")
    return name


def valid_avatar_url(value: str) -> str | None:
    """An absolute http(s) URL with a host, or ``""`` to remove the avatar (stored as None)."""
    url = value.strip()
    if not url:
        return None
    if len(url) > AVATAR_URL_MAX:
        raise InvalidInputError("avatar_url", f"at most {AVATAR_URL_MAX} characters")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInputError("avatar_url", "must be an absolute http(s) URL")
    if any(c.isspace() for c in url) or _has_control(url):
        raise InvalidInputError("avatar_url", "must not contain spaces or control characters")
    return url


def valid_bio(value: str) -> str:
    """A bio of at most 500 characters; newlines allowed, other control characters not."""
    bio = unicodedata.normalize("NFC", value).strip()
    if len(bio) > BIO_MAX:
        raise InvalidInputError("bio", f"at most {BIO_MAX} characters")
    if _has_control(bio, allow_newlines=True):
        raise InvalidInputError("bio", "must not contain control characters")
    return bio


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_time_zone(value: str) -> str:
    """An IANA time zone name known to ``zoneinfo`` (e.g. ``Europe/Paris``)."""
    if value not in _time_zones() and value != "UTC":
        raise InvalidInputError("time_zone", f"unknown time zone {value!r}")
    return value


def valid_search_prefix(value: str) -> str:
    """A username prefix to search by (usernames are matched case-insensitively)."""
    prefix = value.strip().lower()
    if not prefix or len(prefix) > SEARCH_PREFIX_MAX:
        raise InvalidInputError("prefix", f"1..{SEARCH_PREFIX_MAX} characters")
    return prefix
