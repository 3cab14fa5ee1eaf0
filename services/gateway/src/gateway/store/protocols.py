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


class ConnectionSlots(Protocol):
    """Each user's live WebSockets over every gateway, each slot expiring unless renewed."""

    async def claim(self, user_id: str, connection_id: str, *, cap: int, ttl: float) -> bool:
        """Take a slot for ``connection_id`` for ``ttl`` seconds if the user holds fewer than
        ``cap`` live ones; false if not."""
        ...

    async def renew(self, user_id: str, connection_id: str, *, ttl: float) -> None:
        """Extend ``connection_id``'s slot by ``ttl`` seconds from now (retaken if it lapsed)."""
        ...

    async def release(self, user_id: str, connection_id: str) -> None:
        """Give ``connection_id``'s slot back."""
        ...
