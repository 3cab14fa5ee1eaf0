"""Presence: the policy (how long a device counts as there, how long a flap is forgiven) and
the answer about one user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Status = Literal["online", "offline"]


@dataclass(frozen=True, kw_only=True, slots=True)
class PresencePolicy:
    """``device_ttl``: a device without a heartbeat for this long is gone (the user goes offline
    when no device is left). ``offline_grace``: after the last device closes, wait this long
    for one to come back before saying the user went offline (a flap is not a change)."""

    device_ttl: float = 60.0
    offline_grace: float = 5.0

    def __post_init__(self) -> None:
        if self.device_ttl <= 0 or self.offline_grace < 0:
            raise ValueError("device_ttl must be positive and offline_grace not negative")


@dataclass(frozen=True, kw_only=True, slots=True)
class PresenceState:
    """Whether a user is online, and when a device of theirs was last heard from."""

    user_id: str
    status: Status
    last_seen: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class PresenceChange:
    """A debounced transition that must be announced (exactly one caller observes it)."""

    user_id: str
    status: Status
    last_seen: datetime | None
