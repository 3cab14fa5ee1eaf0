"""The SQL unit of work: one connection and transaction shared by the repositories."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from auth.crypto.sealing import Sealer
from auth.store.sql_accounts import SqlAccounts
from auth.store.sql_inbox import SqlInbox


class SqlUnitOfWork:
    """``async with uow: ...; await uow.commit()``; leaving without commit rolls back."""

    def __init__(self, engine: AsyncEngine, sealer: Sealer) -> None:
        self._engine = engine
        self._sealer = sealer
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None
        self._accounts: SqlAccounts | None = None
        self._inbox: SqlInbox | None = None

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

    async def __aenter__(self) -> SqlUnitOfWork:
        self._conn = await self._engine.connect()
        self._tx = await self._conn.begin()
        self._accounts = SqlAccounts(self._conn)
        self._inbox = SqlInbox(self._conn, self._sealer)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._conn is not None and self._tx is not None
        try:
            if self._tx.is_active:
                await self._tx.rollback()
        finally:
            await self._conn.close()
            self._conn = self._tx = None

    async def commit(self) -> None:
        """Commit the transaction."""
        assert self._tx is not None
        await self._tx.commit()


class SqlUnitOfWorkFactory:
    """Makes units of work on one engine."""

    def __init__(self, engine: AsyncEngine, sealer: Sealer) -> None:
        self._engine = engine
        self._sealer = sealer

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, self._sealer)
