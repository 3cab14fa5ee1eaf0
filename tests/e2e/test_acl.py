"""The fleet runs on a cluster with the production ACL users, each service as its own user."""

from __future__ import annotations

import socket

import pytest
import redis

from parley.cluster import LocalCluster
from parley.fleet import SERVICES, Fleet

pytestmark = pytest.mark.e2e


def test_the_fleets_cluster_refuses_the_default_user(e2e_cluster: LocalCluster) -> None:
    with socket.create_connection((e2e_cluster.host, e2e_cluster.ports[0]), timeout=5) as conn:
        conn.sendall(b"PING\r\n")
        assert conn.recv(256).startswith(b"-NOAUTH")
        conn.sendall(b"AUTH default anything\r\n")
        assert conn.recv(256).startswith(b"-WRONGPASS")


def test_every_service_is_connected_as_its_own_user_and_none_as_admin(
    e2e_cluster: LocalCluster, fleet: Fleet
) -> None:
    users: set[str] = set()
    username, password = e2e_cluster.credentials("admin")
    for port in e2e_cluster.ports:
        with redis.Redis(
            host=e2e_cluster.host, port=port, username=username, password=password
        ) as node:
            users |= {c["user"] for c in node.client_list() if c.get("cmd") != "client|list"}
    assert set(SERVICES) <= users
    # Beside them: replicas' links, listed on the master as `replication` and on the replica
    # (the master's stream of writes) as `(superuser)`.
    assert users <= {*SERVICES, "replication", "(superuser)"}, users


def test_a_service_user_cannot_read_another_services_keys_on_the_fleets_cluster(
    e2e_cluster: LocalCluster, fleet: Fleet
) -> None:
    username, password = e2e_cluster.credentials("notification")
    client = redis.RedisCluster(
        host=e2e_cluster.host, port=e2e_cluster.ports[0], username=username, password=password
    )
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.get("auth:session:{x}")
        assert client.set("notification:probe:{x}", "1", ex=10)
    finally:
        client.close()
