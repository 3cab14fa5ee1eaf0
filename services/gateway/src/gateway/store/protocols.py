"""What the gateway's handlers need from storage (implemented in ``store/redis_*.py``)."""

from __future__ import annotations

from typing import Protocol


class RevokedSessions(Protocol):
    """Revoked session ids, each remembered until its tokens can no longer verify."""

    async def add(self, session_id: str, *, until: float) -> None:
        """Remember ``session_id`` as revoked until ``until`` (Unix seconds)."""
        ...

    async def load(self) -> dict[str, float]:
        """Every revoked session still remembered, with its ``until``."""
        ...
