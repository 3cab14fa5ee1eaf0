"""Ports of the handlers that are not storage: the clock.

Domain events go into the unit of work (``uow.events``), which stores them with the change they
announce; see :class:`auth.store.protocols.UnitOfWork`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, timezone-aware UTC."""
    return datetime.now(UTC)
