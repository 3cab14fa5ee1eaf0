"""The auth service's TTL table for Redis cache entries (sessions and limits carry their own)."""

from __future__ import annotations

from shared.ttl import TtlPolicy, TtlRule

TTL = TtlPolicy(
    {
        # Grants change only with roles, and a role change deletes the entry, so the TTL only
        # bounds how long a missed invalidation could last.
        "permissions": TtlRule(ttl=300.0, jitter=0.1, negative_ttl=30.0),
    }
)
