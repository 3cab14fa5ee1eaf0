"""The inbox (``processed_messages``) in SQL, with replies sealed at rest.

Replies of register, login and refresh hold tokens, so they are sealed (AES-GCM, bound to the
message id) with a sub-key of the key-encryption key before they reach the database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.crypto.sealing import Sealer
from auth.store.tables import processed_messages


class SqlInbox:
    """Processed message ids and their replies on one connection."""

    def __init__(self, conn: AsyncConnection, sealer: Sealer) -> None:
        self._conn = conn
        self._sealer = sealer

    async def reply_of(self, message_id: str) -> bytes | None:
        """The stored reply (``b""`` when none was kept), or None when not handled."""
        query = select(processed_messages.c.reply).where(
            processed_messages.c.message_id == message_id
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        sealed = row[0]
        return b"" if not sealed else self._sealer.open(bytes(sealed), binding=message_id)

    async def record(self, message_id: str, reply: bytes = b"") -> None:
        """Mark handled with its reply (a second record of one id fails the transaction)."""
        sealed = self._sealer.seal(reply, binding=message_id) if reply else None
        await self._conn.execute(
            insert(processed_messages).values(message_id=message_id, reply=sealed)
        )

    async def purge(self, *, before: datetime) -> int:
        """Forget messages handled before ``before`` (replies older than the dedupe window)."""
        result = await self._conn.execute(
            delete(processed_messages).where(processed_messages.c.handled_at < before)
        )
        return int(result.rowcount or 0)
