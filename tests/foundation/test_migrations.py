"""Each service's migrations run on SQLite and on PostgreSQL, from the service's own command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from shared.service.database import Database

pytestmark = pytest.mark.integration

DATA_SERVICES = ("auth", "user", "chat", "notification")
ROOT = Path(__file__).resolve().parents[2]


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
async def test_parley_migrate_brings_a_database_to_head(service: str, database_url: str) -> None:
    result = _migrate(service, database_url)
    assert result.returncode == 0, result.stderr
    assert {"alembic_version", "processed_messages"} <= await _tables(database_url)
    db = Database(database_url)
    try:
        assert await db.current_revision() == _head(service)
    finally:
        await db.close()
    again = _migrate(service, database_url)  # idempotent
    assert again.returncode == 0, again.stderr


def test_an_unknown_service_is_refused() -> None:
    result = _migrate("billing", "sqlite+aiosqlite:///x.db")
    assert result.returncode == 2
    assert "unknown service" in result.stderr
