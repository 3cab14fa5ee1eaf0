"""The SQL unit of work: one connection and transaction shared by the repositories.

Domain events a handler appends to ``uow.events`` are written to the ``outbox`` table by
:meth:`SqlUnitOfWork.commit`, in the transaction of the change they announce, and appended to
``auth.events`` when the ``async with`` block exits (after the connection is back in the pool).
A failed append leaves the rows to the outbox relay (``shared.outbox``); the command stands.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from auth.crypto.sealing import Sealer
from auth.domain.events import DomainEvent
from auth.store.sql_accounts import SqlAccounts
from auth.store.sql_inbox import SqlInbox
from auth.store.sql_keys import SqlSigningKeys
from contracts.base import Event
from shared.outbox import Outbox, Staged

ToContract = Callable[[DomainEvent], Event]
"""The wire message of a domain event (the api layer owns the mapping; bootstrap injects it)."""


class SqlUnitOfWork:
    """``async with uow: ...; await uow.commit()``; leaving without commit rolls back."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        replies: Sealer,
        keys: Sealer,
        outbox: Outbox,
        to_contract: ToContract,
    ) -> None:
        self._engine = engine
        self._replies = replies
        self._keys = keys
        self._outbox = outbox
        self._to_contract = to_contract
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None
        self._accounts: SqlAccounts | None = None
        self._inbox: SqlInbox | None = None
        self._signing_keys: SqlSigningKeys | None = None
        self._events: list[DomainEvent] = []
        self._committed: list[Staged] | None = None

    @property
    def accounts(self) -> SqlAccounts:
        """The accounts, in this transaction."""
        assert self._accounts is not None, "use the unit of work as 'async with'"
        return self._accounts

    @property
    def inbox(self) -> SqlInbox:
        """The inbox, in this transaction."""
        assert self._inbox is not None, "use the unit of work as 'async with'"
        return self._inbox

    @property
    def signing_keys(self) -> SqlSigningKeys:
        """The signing keys, in this transaction."""
        assert self._signing_keys is not None, "use the unit of work as 'async with'"
        return self._signing_keys

    @property
    def events(self) -> list[DomainEvent]:
        """Events to announce once this unit commits."""
        return self._events

    async def __aenter__(self) -> SqlUnitOfWork:
        self._conn = await self._engine.connect()
        self._tx = await self._conn.begin()
        self._accounts = SqlAccounts(self._conn)
        self._inbox = SqlInbox(self._conn, self._replies)
        self._signing_keys = SqlSigningKeys(self._conn, self._keys)
        self._events, self._committed = [], None
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._conn is not None and self._tx is not None
        committed, self._committed = self._committed, None
        try:
            if self._tx.is_active:
                await self._tx.rollback()
        finally:
            await self._conn.close()
            self._conn = self._tx = None
            self._accounts = self._inbox = self._signing_keys = None
        if committed is None:
            return  # rolled back: its events never happened
        # Never raises: a failed append leaves the rows to the relay, and the change stands.
        await self._outbox.send(committed)
        assert not self._events, "events added after the commit are never announced"

    async def commit(self) -> None:
        """Write the events to the outbox and commit them with the change."""
        assert self._conn is not None and self._tx is not None
        staged = [self._outbox.stage(self._to_contract(e)) for e in self._events]
        await self._outbox.write(self._conn, staged)
        await self._tx.commit()
        self._events, self._committed = [], staged
