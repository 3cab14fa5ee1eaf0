"""The inbox from the handlers' side: what a replayed command answers.

A command's message id is recorded in ``processed_messages`` with its reply, in the transaction of
its database effect where it has one. A replay (the bus redelivers after a crash, or a dead letter
is redriven) finds the record and answers the stored reply without running the command again.
"""

from __future__ import annotations

import dataclasses
import json

from auth.domain.sessions import IssuedTokens
from auth.store.protocols import UnitOfWorkFactory


def encode_tokens(tokens: IssuedTokens) -> bytes:
    """The stored form of issued tokens (sealed by the inbox store)."""
    return json.dumps(dataclasses.asdict(tokens)).encode()


def decode_tokens(stored: bytes) -> IssuedTokens:
    """Issued tokens back from their stored form."""
    return IssuedTokens(**json.loads(stored))


def encode_count(count: int) -> bytes:
    """The stored form of a count result."""
    return json.dumps({"count": count}).encode()


def decode_count(stored: bytes) -> int:
    """A count result back from its stored form."""
    return int(json.loads(stored)["count"])


class Replays:
    """Reads and writes stored replies in units of work of their own (for Redis-only effects)."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def stored(self, message_id: str) -> bytes | None:
        """The stored reply of ``message_id`` if it was handled."""
        async with self._uow() as uow:
            return await uow.inbox.reply_of(message_id)

    async def remember(self, message_id: str, reply: bytes = b"") -> None:
        """Record ``message_id`` as handled with ``reply``."""
        async with self._uow() as uow:
            await uow.inbox.record(message_id, reply)
            await uow.commit()
