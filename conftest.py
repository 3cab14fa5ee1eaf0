"""Fixtures every test suite of the workspace shares: the real local test cluster."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import asyncpg  # type: ignore[import-untyped]
import pytest

# Import the real packages first: with importlib import mode, a test folder such as
# shared/tests would otherwise make the repo folder `shared/` a namespace package that hides them.
import contracts  # noqa: F401
import shared  # noqa: F401
from parley.cluster import LocalCluster, parse_ports
from parley.containers import cluster_for_tests

# anyio imports its submodules on first attribute access, and pytest rewrites them on import
# (anyio is a pytest plugin). Rewriting one deep in a request's stack — the first FileResponse
# in a test — can make CPython 3.11's ast.parse raise "SystemError: AST constructor recursion
# depth mismatch". Importing them all here, at the top of the stack, keeps that out of the tests.
for _name in dir(anyio):
    getattr(anyio, _name)

ROOT = Path(__file__).resolve().parent
STRICT = os.environ.get("PARLEY_TEST_STRICT") == "1"
"""Set by ``.ci/run``: a test that would skip (no PostgreSQL, no redis-cli, no promtool) fails."""
PG_ADMIN = os.environ.get("PARLEY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under ``PARLEY_TEST_STRICT=1`` every skip is a failure: the skips here stand only for a
    tool or server missing on a developer's machine, and CI provides them all."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under PARLEY_TEST_STRICT=1, where nothing may skip: {reason}"


def _ports(variable: str, default: str) -> tuple[int, ...]:
    return parse_ports(os.environ.get(variable, default))


@pytest.fixture(scope="session")
def test_cluster() -> Iterator[LocalCluster]:
    """A 3-master, 3-replica cluster on the test ports (``PARLEY_TEST_CLUSTER_PORTS``, 7101-7106).

    A healthy cluster already on those ports is reused and left running; one this fixture started
    is stopped at the end of the session. Under ``PARLEY_TEST_DOCKER=1`` its nodes are containers
    (``parley.containers``).
    """
    cluster = cluster_for_tests(ROOT / ".parley", _ports("PARLEY_TEST_CLUSTER_PORTS", "7101-7106"))
    reused = cluster.status().ok
    cluster.up()
    yield cluster
    if not reused:
        cluster.down()


@pytest.fixture(scope="session")
def redis_url(test_cluster: LocalCluster) -> str:
    """The URL of one node of the test cluster (cluster clients discover the rest)."""
    return test_cluster.url()


@pytest.fixture
def disposable_cluster() -> Iterator[LocalCluster]:
    """A fresh cluster of its own (``PARLEY_TEST_SPARE_PORTS``, 7111-7116) for tests that break it.

    It is wiped before and after, so a test may kill, restart or corrupt its nodes freely.
    """
    cluster = cluster_for_tests(ROOT / ".parley", _ports("PARLEY_TEST_SPARE_PORTS", "7111-7116"))
    cluster.reset()
    yield cluster
    cluster.reset()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a fresh, empty database: a SQLite file, then a PostgreSQL database.

    PostgreSQL is ``PARLEY_TEST_POSTGRES_DSN`` or a local server (user postgres, database test);
    each test gets a database of its own, dropped afterwards. Without a reachable server the
    PostgreSQL case is skipped with the reason, and fails under CI (``PARLEY_TEST_STRICT=1``).
    """
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/service.db"
        return
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        pytest.skip(
            f"no PostgreSQL server at {PG_ADMIN}: set PARLEY_TEST_POSTGRES_DSN, or start one with"
            " `scripts/ensure-postgres start` (CI does; there this skip fails the run)"
        )
    name = f"parley_test_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
