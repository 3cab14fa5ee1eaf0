"""Ports of the handlers that are not storage: where domain events go, and the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from auth.domain.events import DomainEvent

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, timezone-aware UTC."""
    return datetime.now(UTC)


class EventSink(Protocol):
    """Announces domain events (the api layer publishes them on ``auth.events``)."""

    async def emit(self, event: DomainEvent) -> None:
        """Publish ``event``; raises when it could not be published."""
        ...
