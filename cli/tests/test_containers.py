"""The cluster with its nodes in containers (testcontainers), against a real Docker engine.

Needs an engine and the image ``PARLEY_TEST_REDIS_IMAGE`` (default ``valkey/valkey:8.1``, pulled
when missing); ``scripts/ensure-docker`` provides both where neither is at hand (CI runs it).
Ports: ``PARLEY_TEST_CONTAINER_PORTS`` (7151-7156).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import ConstantBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from parley.cluster import SLOTS, ClusterError, parse_ports, wait_until
from parley.containers import ContainerCluster, cluster_for_tests

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def _engine_answers() -> bool:
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return False
    return True


@pytest.fixture
def containers() -> Iterator[ContainerCluster]:
    if not _engine_answers():
        pytest.skip(
            "no Docker engine answers (`scripts/ensure-docker start` starts one); CI starts it, "
            "and there this skip fails the run"
        )
    ports = parse_ports(os.environ.get("PARLEY_TEST_CONTAINER_PORTS", "7151-7156"))
    cluster = ContainerCluster(ROOT / ".parley", ports)
    cluster.reset()
    yield cluster
    cluster.reset()


def _node_id(port: int) -> str:
    with redis.Redis(port=port) as r:
        return str(r.execute_command("CLUSTER MYID"), "utf-8")


def test_containers_form_three_replicated_masters_that_serve_every_slot(
    containers: ContainerCluster,
) -> None:
    status = containers.up()
    assert status.ok, status.problems
    assert sum(n.slot_count for n in status.nodes if n.role == "master") == SLOTS
    assert sorted(n.role for n in status.nodes) == ["master"] * 3 + ["replica"] * 3
    for port in containers.ports:
        assert containers.pid(port) is not None  # a running container, not a local process
    client = RedisCluster.from_url(containers.url())
    try:
        for i in range(300):  # keys on every master
            client.set(f"k{i}", i)
        assert [int(client.get(f"k{i}")) for i in range(300)] == list(range(300))
    finally:
        client.close()


def test_a_killed_master_fails_over_and_its_container_rejoins_as_itself(
    containers: ContainerCluster,
) -> None:
    status = containers.up()
    master = next(n.port for n in status.nodes if n.role == "master")
    identity = _node_id(master)
    client = RedisCluster.from_url(containers.url(), retry=Retry(ConstantBackoff(0.2), 25))
    try:
        client.set("before", "1")
        assert containers.stop_node(master, sig=signal.SIGKILL)
        assert containers.pid(master) is None

        def promoted() -> bool:
            roles = {n.port: n.role for n in containers.status().nodes if n.running}
            return list(roles.values()).count("master") == 3 and master not in roles

        wait_until("a replica's promotion", promoted, 30)
        for i in range(100):  # every slot is served again, the failed-over ones included
            client.set(f"after{i}", i)
        assert containers.up().ok  # the same container again
        assert _node_id(master) == identity  # nodes.conf kept: it rejoined as the same node
        roles = {n.port: n.role for n in containers.status().nodes}
        assert roles[master] == "replica"
        assert client.get("before") == b"1"
    finally:
        client.close()


def test_reset_removes_the_containers(containers: ContainerCluster) -> None:
    containers.up()
    containers.reset()
    assert all(containers.pid(p) is None for p in containers.ports)
    assert containers.status().problems  # nothing answers any more


@pytest.mark.unit
def test_without_an_engine_the_error_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("PARLEY_TEST_DOCKER", "1")
    cluster = cluster_for_tests(ROOT / ".parley", parse_ports("7151-7156"))
    assert isinstance(cluster, ContainerCluster)
    with pytest.raises(ClusterError, match="no Docker engine answers"):
        cluster.start_node(7151)
