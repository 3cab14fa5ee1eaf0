"""The chat service's TTL policy: how long each kind of Redis entry lives (one table)."""

from __future__ import annotations

from shared.ttl import TtlPolicy, TtlRule

TTL = TtlPolicy(
    {
        # The last messages of a conversation: written through, so only idle ones expire.
        "recent": TtlRule(ttl=24 * 3600, jitter=0.1),
        # Conversation metadata and membership: invalidated on every change; read on every post.
        "conversation": TtlRule(ttl=3600, jitter=0.1, negative_ttl=5),
        # Typing: a frame keeps a member "typing" this long (the 6 s, no jitter).
        "typing": TtlRule(ttl=6, jitter=0.0),
    }
)

RECENT_SIZE = 50
"""How many of a conversation's last messages the recent-message cache holds."""
