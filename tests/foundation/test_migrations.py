"""Each service's migrations run on SQLite and on PostgreSQL, from the service's own command."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from shared.service.database import Database

pytestmark = pytest.mark.integration

DATA_SERVICES = ("auth", "user", "chat", "notification")
ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN = os.environ.get("PARLEY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def _postgres_available() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    if not await _postgres_available():
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN} (set PARLEY_TEST_POSTGRES_DSN)")
    name = f"parley_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/service.db"


async def _tables(url: str) -> set[str]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await db.close()


def _head(service: str) -> str | None:
    """The newest revision among the service's own migration scripts."""
    config = Config()
    config.set_main_option(
        "script_location", str(ROOT / f"services/{service}/src/{service}/store/migrations")
    )
    return ScriptDirectory.from_config(config).get_current_head()


def _migrate(service: str, url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **{f"{service.upper()}_DATABASE_URL": url})
    return subprocess.run(
        [str(Path(sys.executable).parent / "parley"), "migrate", service],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("service", DATA_SERVICES)
async def test_parley_migrate_brings_a_sqlite_database_to_head(
    service: str, sqlite_url: str
) -> None:
    result = _migrate(service, sqlite_url)
    assert result.returncode == 0, result.stderr
    assert {"alembic_version", "processed_messages"} <= await _tables(sqlite_url)
    assert await Database(sqlite_url).current_revision() == _head(service)
    again = _migrate(service, sqlite_url)  # idempotent
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("service", DATA_SERVICES)
async def test_parley_migrate_brings_a_postgres_database_to_head(
    service: str, postgres_url: str
) -> None:
    result = _migrate(service, postgres_url)
    assert result.returncode == 0, result.stderr
    assert {"alembic_version", "processed_messages"} <= await _tables(postgres_url)


def test_an_unknown_service_is_refused() -> None:
    result = _migrate("billing", "sqlite+aiosqlite:///x.db")
    assert result.returncode == 2
    assert "unknown service" in result.stderr
