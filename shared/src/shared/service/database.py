"""A service's own database: an async SQLAlchemy engine and its Alembic migrations.

SQLite (``sqlite+aiosqlite``) by default, PostgreSQL (``postgresql+asyncpg``) in production. Each
service keeps its migrations in its own ``store/migrations`` folder; :meth:`Database.migrate`
applies them up to head, and a service's ``env.py`` calls :func:`run_migrations_env`.

A circuit breaker (``database:<service>``) watches the connections: connection attempts that fail,
and statements that find the server gone, open it; while open, taking a new connection raises
:class:`DatabaseCircuitOpen` at once instead of waiting on a connect timeout per request. Once it
has cooled down, the next connection attempt is the probe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import Connection, Dialect, ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.breaker import CLOSED, BreakerSettings, CircuitBreaker, CircuitOpenError
from shared.tracing import sql as tracing_sql


class DatabaseCircuitOpen(CircuitOpenError):
    """A connection refused without a try: the database's breaker is open."""


class Database:
    """The engine of one service's database. Nothing connects until it is first used."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        name: str = "default",
        breaker: BreakerSettings | None = None,
    ) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.drivername.startswith("sqlite")
        if self.is_sqlite and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # No pre-ping: it costs a round trip on every checkout, and every transaction. A
        # connection the server dropped fails its first statement instead; SQLAlchemy then
        # discards the whole pool, and the work is retried (bus handlers retry with backoff).
        options: dict[str, object] = {"pool_pre_ping": False, "pool_recycle": 1800}
        if not self.is_sqlite:
            options["pool_size"] = pool_size
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.breaker = CircuitBreaker(f"database:{name}", breaker)
        _watch(self.engine, self.breaker)
        database = parsed.database
        tracing_sql.instrument(
            self.engine.sync_engine,
            system="sqlite" if self.is_sqlite else parsed.get_backend_name(),
            namespace=Path(database).stem if self.is_sqlite and database else database,
        )

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises when the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def migrate(self, script_location: Path, *, revision: str = "head") -> None:
        """Apply the migrations in ``script_location`` up to ``revision``."""
        config = Config()
        config.set_main_option("script_location", str(script_location))

        def upgrade(connection: Connection) -> None:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

        async with self.engine.begin() as conn:
            await conn.run_sync(upgrade)

    async def current_revision(self) -> str | None:
        """The revision the database is at, or None before the first migration."""
        async with self.engine.connect() as conn:
            exists = await conn.run_sync(lambda c: c.dialect.has_table(c, "alembic_version"))
            if not exists:
                return None
            row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
            return None if row is None else str(row[0])

    async def close(self) -> None:
        await self.engine.dispose()


def _watch(engine: AsyncEngine, breaker: CircuitBreaker) -> None:
    """Hook ``breaker`` into the engine: it makes each new connection, and hears of lost ones.

    Only new connections pay for it: a pooled connection's statements are not checked, and a
    failed statement counts only when it found the server gone (not a constraint violation).
    """

    def connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
        if breaker.state is not CLOSED and not breaker.allow():
            raise DatabaseCircuitOpen(breaker.name, breaker.retry_after())
        try:
            connection = dialect.connect(*cargs, **cparams)
        except Exception:
            breaker.record_failure()
            raise
        breaker.record_success()
        return connection

    def failed(context: ExceptionContext) -> None:
        if context.is_disconnect and not isinstance(context.original_exception, CircuitOpenError):
            breaker.record_failure()

    sync = engine.sync_engine
    event.listen(sync, "do_connect", connect)
    event.listen(sync, "handle_error", failed)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    # Under WAL, NORMAL is safe against corruption; a power cut may lose the last commits only.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def run_migrations_env(metadata: MetaData) -> None:
    """The body of a service's Alembic ``env.py``: migrate on the connection ``migrate`` passes."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run migrations with `parley migrate <service>` or the service's `migrate`"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
