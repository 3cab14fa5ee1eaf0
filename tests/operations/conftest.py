"""A cluster and fleet of their own for the cluster operations run under traffic.

The cluster (``PARLEY_TEST_OPS_PORTS``, default 7107-7110,7117,7118) has the fleet's ACL users;
``PARLEY_TEST_OPS_NODE_PORTS`` (7119,7120) are the two nodes a test adds (a master and its
replica). The operations run as an operator runs them: the ``parley cluster`` command in its own
process, as the ``admin`` user with its password in a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from parley.cluster import LocalCluster
from parley.fleet import SERVICES, Fleet
from tests.e2e.conftest import FAST_SETTINGS, fresh_cluster, sign_up

ROOT = Path(__file__).resolve().parents[2]
PARLEY = str(Path(sys.executable).parent / "parley")


def node_ports() -> tuple[int, int]:
    text = os.environ.get("PARLEY_TEST_OPS_NODE_PORTS", "7119,7120")
    first, second = (int(p) for p in text.replace("-", ",").split(",")[:2])
    return first, second


@dataclass
class Ops:
    """The cluster under test, its running fleet (restartable) and the ``parley`` command."""

    cluster: LocalCluster
    home: Path
    password_file: Path
    fleet: Fleet | None = None

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PARLEY_CLUSTER_URL": self.cluster.url(),
            "PARLEY_CLUSTER_USER": "admin",
            "PARLEY_CLUSTER_PASSWORD_FILE": str(self.password_file),
        }

    def parley(self, *args: str, timeout: float = 300) -> Any:
        """``parley cluster <args> --json`` in its own process; its JSON answer (must succeed)."""
        result = subprocess.run(
            [PARLEY, "cluster", *args, "--json"],
            env=self.env(), capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        assert result.returncode == 0, (
            f"parley cluster {' '.join(args)}: {result.stdout} {result.stderr}"
        )
        return json.loads(result.stdout.strip().splitlines()[-1])

    def status(self) -> Any:
        """``parley cluster status --json``, whether the cluster is ok or not."""
        result = subprocess.run(
            [PARLEY, "cluster", "status", "--json"],
            env=self.env(), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return json.loads(result.stdout)

    def start_fleet(self) -> Fleet:
        """The five services on the cluster; their databases in ``home/fleet`` survive restarts."""
        users = {s: self.cluster.acl.credentials(s) for s in SERVICES} if self.cluster.acl else None
        fleet = Fleet(
            self.cluster.url(), self.home / "fleet", extra_env=FAST_SETTINGS, redis_users=users
        )
        self.fleet = fleet.start(timeout=180)
        return fleet

    def stop_fleet(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
            self.fleet = None

    def extra_nodes(self) -> LocalCluster:
        a, b = node_ports()
        return LocalCluster(self.cluster.root, (a, b, a, b, a, b), acl=self.cluster.acl)

    def spare_nodes(self) -> LocalCluster:
        """A manager for the two extra nodes (same ACL users), started empty."""
        extra = self.extra_nodes()
        extra.reset()
        for port in node_ports():
            extra.start_node(port)
        return extra


@pytest.fixture(scope="session")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    with fresh_cluster("PARLEY_TEST_OPS_PORTS", "7107,7108,7109,7110,7117,7118") as cluster:
        home = tmp_path_factory.mktemp("ops")
        password_file = home / "admin.password"
        assert cluster.acl is not None
        password_file.write_text(cluster.acl.credentials("admin")[1] or "")
        state = Ops(cluster, home, password_file)
        state.start_fleet()
        try:
            yield state
        finally:
            state.stop_fleet()
            state.extra_nodes().reset()


@dataclass
class Person:
    id: str
    username: str
    password: str
    token: str
    http: httpx.Client


def register(fleet: Fleet) -> Person:
    name, password, tokens, http = sign_up(fleet)
    return Person(tokens["user_id"], name, password, tokens["access_token"], http)
