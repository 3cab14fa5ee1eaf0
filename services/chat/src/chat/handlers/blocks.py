"""Keeping the local copy of user blocks from ``user.events``."""

from __future__ import annotations

from chat.store.protocols import BlockStore
from contracts import user as user_wire


class Blocks:
    """Block event use cases (idempotent: redelivery changes nothing)."""

    def __init__(self, *, blocks: BlockStore) -> None:
        self._blocks = blocks

    async def blocked(self, event: user_wire.UserBlocked) -> None:
        """Record the block."""
        await self._blocks.block(event.user_id, event.blocked_id)

    async def unblocked(self, event: user_wire.UserUnblocked) -> None:
        """Forget the block."""
        await self._blocks.unblock(event.user_id, event.blocked_id)
