"""The notification service's Redis key space and TTL policy (the one table of its TTLs)."""

from __future__ import annotations

from shared.keys import KeySpace
from shared.ttl import TtlPolicy, TtlRule

KEYS = KeySpace("notification")

TTL = TtlPolicy(
    {
        # A user's audience (settings, overrides, blocks): invalidated on change, so the TTL
        # only bounds how long a missed invalidation can last.
        "audience": TtlRule(ttl=600, jitter=0.1, negative_ttl=60),
        # A conversation's members (the projection), dropped after every membership change.
        "members": TtlRule(ttl=600, jitter=0.1),
        # Badge counters are reconciled from the database when they expire: this bounds drift
        # after a crash between a commit and its counter update.
        "badge": TtlRule(ttl=3600, jitter=0.1),
        # A badge's version only has to outlive the changes in flight; every bump renews it.
        "badge_version": TtlRule(ttl=3600, jitter=0.0),
        # Presence comes from debounced user events; a lost "offline" ends within a day.
        "presence": TtlRule(ttl=86_400, jitter=0.05),
        # "Viewing" must be refreshed by the gateway; a vanished client stops counting soon.
        "viewing": TtlRule(ttl=90, jitter=0.0),
    }
)


def presence_key(user_id: str) -> str:
    """``notification:presence:{user:<id>}``: present while the user is online."""
    return KEYS.key("presence", tag=f"user:{user_id}")


def user_viewing_key(user_id: str) -> str:
    """``notification:viewing:{user:<id>}``: the conversation the user has open."""
    return KEYS.key("viewing", tag=f"user:{user_id}")


def conversation_viewers_key(conversation_id: str) -> str:
    """``notification:viewers:{conv:<id>}``: hash user id -> viewing expiry (epoch ms)."""
    return KEYS.key("viewers", tag=f"conv:{conversation_id}")


def badge_key(user_id: str) -> str:
    """``notification:badge:{user:<id>}``: the unread count."""
    return KEYS.key("badge", tag=f"user:{user_id}")


def badge_version_key(user_id: str) -> str:
    """``notification:badgever:{user:<id>}``: bumped by every change of the unread count, so a
    count read from the database is stored only if nothing changed while it was read."""
    return KEYS.key("badgever", tag=f"user:{user_id}")
