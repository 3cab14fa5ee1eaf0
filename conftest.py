"""Fixtures every test suite of the workspace shares: the real local test cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Import the real packages first: with importlib import mode, a test folder such as
# shared/tests would otherwise make the repo folder `shared/` a namespace package that hides them.
import contracts  # noqa: F401
import shared  # noqa: F401
from parley.cluster import LocalCluster, parse_ports

ROOT = Path(__file__).resolve().parent


def _ports(variable: str, default: str) -> tuple[int, ...]:
    return parse_ports(os.environ.get(variable, default))


@pytest.fixture(scope="session")
def test_cluster() -> Iterator[LocalCluster]:
    """A 3-master, 3-replica cluster on the test ports (``PARLEY_TEST_CLUSTER_PORTS``, 7101-7106).

    A healthy cluster already on those ports is reused and left running; one this fixture started
    is stopped at the end of the session.
    """
    cluster = LocalCluster(ROOT / ".parley", _ports("PARLEY_TEST_CLUSTER_PORTS", "7101-7106"))
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
    cluster = LocalCluster(ROOT / ".parley", _ports("PARLEY_TEST_SPARE_PORTS", "7111-7116"))
    cluster.reset()
    yield cluster
    cluster.reset()
