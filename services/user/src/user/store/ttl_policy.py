"""The user service's one TTL table: every Redis entry it writes lives as long as this says."""

from __future__ import annotations

from shared.ttl import TtlPolicy, TtlRule

_DAY = 86_400.0

TTL = TtlPolicy(
    {
        # Profiles change rarely and every change overwrites the entry: long-lived is safe.
        "profile": TtlRule(ttl=600.0, jitter=0.1, negative_ttl=15.0),
        # Relationship lists are deleted on every change; the TTL only bounds a missed delete.
        "contacts": TtlRule(ttl=300.0, jitter=0.1, negative_ttl=30.0),
        "watchers": TtlRule(ttl=300.0, jitter=0.1, negative_ttl=30.0),
        "blocks": TtlRule(ttl=300.0, jitter=0.1, negative_ttl=30.0),
        "blocked_by": TtlRule(ttl=300.0, jitter=0.1, negative_ttl=30.0),
        # "Never set" is common (defaults), so the negative entry lives as long as a positive one.
        "preferences": TtlRule(ttl=900.0, jitter=0.1, negative_ttl=900.0),
        # A user's presence state (status, last_seen): kept for a month after the last change.
        "presence": TtlRule(ttl=30 * _DAY, jitter=0.0),
    }
)
