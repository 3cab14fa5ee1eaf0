"""The fleet's gateway holds its real-time channels on one Redis connection per primary."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis

from parley.cluster import LocalCluster

from .conftest import next_frame
from .test_realtime import group, post, socket

pytestmark = [pytest.mark.e2e]

CONVERSATIONS = 30


def pubsub_connections(cluster: LocalCluster) -> dict[str, dict[int, list[int]]]:
    """Per subscriber-connection name (``<instance>-pubsub``): primary port -> the number of
    shard channels each such connection holds there."""
    found: dict[str, dict[int, list[int]]] = {}
    username, password = cluster.credentials("admin")
    for port in cluster.ports:
        node = redis.Redis(host=cluster.host, port=port, username=username, password=password)
        try:
            if node.info("replication")["role"] != "master":
                continue
            for client in node.client_list():
                if str(client.get("name", "")).endswith("-pubsub"):
                    per_node = found.setdefault(client["name"], {})
                    per_node.setdefault(port, []).append(int(client.get("ssub", 0)))
        finally:
            node.close()
    return found


def test_a_user_in_many_conversations_adds_no_connection_per_channel(
    fleet: Any, e2e_cluster: LocalCluster, register: Callable[[], Any]
) -> None:
    alice, bob = register(), register()
    convs = [group(alice, bob) for _ in range(CONVERSATIONS)]
    with socket(fleet, bob) as ws:
        # The gateway's subscriber connections are those carrying the most shard channels.
        found = pubsub_connections(e2e_cluster)
        name = max(found, key=lambda n: sum(sum(v) for v in found[n].values()))
        gateway = found[name]
        assert all(len(counts) == 1 for counts in gateway.values())  # one per primary
        assert sum(sum(counts) for counts in gateway.values()) >= CONVERSATIONS + 2

        # Every conversation's channel is live on them: a message in each arrives.
        marker = uuid.uuid4().hex
        for conv in convs[::6]:
            post(alice, conv, marker)
        got: set[str] = set()
        while len(got) < len(convs[::6]):
            frame = next_frame(ws, {"message.posted"})
            if frame["message"]["body"] == marker:
                got.add(frame["conversation_id"])
        assert got == set(convs[::6])
