"""Relationships between users: contacts and blocks, and who may see whose presence."""

from __future__ import annotations

from collections.abc import Iterable

from user.domain.errors import InvalidInputError

MAX_CONTACTS = 10_000


def check_contact(user_id: str, contact_id: str, *, current_count: int) -> None:
    """Raise unless ``user_id`` may add ``contact_id`` to contacts."""
    if user_id == contact_id:
        raise InvalidInputError("contact_id", "a user cannot be their own contact")
    if current_count >= MAX_CONTACTS:
        raise InvalidInputError("contact_id", f"at most {MAX_CONTACTS} contacts")


def check_block(user_id: str, blocked_id: str) -> None:
    """Raise unless ``user_id`` may block ``blocked_id``."""
    if user_id == blocked_id:
        raise InvalidInputError("blocked_id", "a user cannot block themselves")


def presence_audience(watchers: Iterable[str], blocked: Iterable[str]) -> list[str]:
    """Who is told about a user's presence: those who list them as a contact, minus anyone
    the user blocked (a block hides presence from the blocked user)."""
    hidden = set(blocked)
    return [w for w in dict.fromkeys(watchers) if w not in hidden]
