"""Tunables of the real-time side (queue sizes, bounds, intervals), with production defaults.

Kept apart from :class:`gateway.config.Settings` so tests can shrink them; ``install_realtime``
reads the ``GATEWAY_WS_*`` environment variables into one :class:`RealtimeOptions`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True, kw_only=True)
class RealtimeOptions:
    """See docs/websocket.md for what each bound means to a client."""

    send_queue: int = 512
    """Frames queued per connection; essential frames beyond it close the connection (4008)."""
    droppable_limit: int | None = None
    """Queue length from which typing/presence are dropped (default: half the queue)."""
    recovery_bound: int = 200
    """Messages recovered per conversation at most; beyond, ``recovered: false``."""
    recovery_rounds: int = 3
    """History fetches per recovery before giving up on a hole (lost live frames)."""
    resume_concurrency: int = 8
    """Conversations of one ``resume`` recovered at the same time."""
    max_conversations: int = 1000
    """Conversations subscribed for one connection at connect time."""
    heartbeat_interval: float = 20.0
    """Seconds between ``gateway.connection_heartbeat`` events (well within presence's TTL)."""
    typing_interval: float = 3.0
    """Least seconds between two ``typing`` commands per conversation and connection."""
    auth_timeout: float = 5.0
    """Seconds a connection without ``?token=`` has to send its ``auth`` frame."""
    max_pending_commands: int = 32
    """Client frames being handled at once per connection; beyond, ``rate_limited``."""
    dedupe_window: int = 512
    """Recent frame ids remembered to drop an event seen on two channels."""
    max_user_connections: int = 20
    """WebSockets one user may hold at once over every gateway; beyond, closed with 4009."""
    handshake_rate: int = 10
    """Sustained WebSocket handshakes per second per client address; beyond, closed with 4029."""
    handshake_burst: int = 100
    """Handshakes one address may make at once (a NAT's clients reconnecting together)."""
    frame_rate: float = 20.0
    """Sustained client frames per second per connection; beyond, refused (``rate_limited``)."""
    frame_burst: int = 60
    """Client frames a connection may send at once; as many refused in a row close it (4029)."""
    max_resuming: int = 1000
    """``resume`` entries (conversations) in flight per connection; beyond, ``rate_limited``."""
    admissions: int = 64
    """Connections admitted at once per process (from the accept to ``ready``); the others wait
    their turn, so a storm of reconnects does not pile onto the Redis pool."""

    def __post_init__(self) -> None:
        # A zero or negative bound would refuse everything (or nothing): fail at start-up.
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value <= 0:
                raise ValueError(f"GATEWAY_WS_{f.name.upper()} must be positive, got {value}")

    @property
    def slot_ttl(self) -> float:
        """Seconds a connection's slot in the per-user count lives without a heartbeat renewing
        it: three heartbeats, so a crashed gateway's connections stop counting soon after."""
        return 3 * self.heartbeat_interval

    @classmethod
    def from_env(cls, prefix: str = "GATEWAY_WS_") -> RealtimeOptions:
        """Defaults overridden by ``<prefix><FIELD>`` environment variables."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(prefix + f.name.upper())
            if raw is None:
                continue
            kind = float if isinstance(getattr(cls(), f.name), float) else int
            values[f.name] = kind(raw)
        return cls(**values)  # type: ignore[arg-type]
