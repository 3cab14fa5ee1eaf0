"""The fleet through a whole-cluster outage: every Redis node stopped, then started again.

A fleet and a cluster of its own (``PARLEY_TEST_OUTAGE_PORTS``, 7191-7196), since the outage would
break every other test's. The nodes keep their data (AOF) and cluster configuration, as after a
power cut; the services are not restarted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from parley.cluster import LocalCluster
from parley.fleet import Fleet

from .conftest import fresh_cluster, next_frame, running_fleet

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERVICES = ("auth", "user", "chat", "notification", "gateway")


@pytest.fixture(scope="module")
def outage_cluster() -> Iterator[LocalCluster]:
    with fresh_cluster("PARLEY_TEST_OUTAGE_PORTS", "7191-7196") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def fleet(
    outage_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    """This module's own fleet (the suite's ``register`` fixture uses it here)."""
    with running_fleet(outage_cluster, tmp_path_factory.mktemp("outage")) as running:
        yield running


def _post_until_accepted(user: Any, conv: str, body: str, within: float) -> None:
    """POST one message, retried with the same client_msg_id until it is accepted."""
    cmid, deadline = uuid.uuid4().hex, time.monotonic() + within
    while True:
        try:
            r = user.post(f"/conversations/{conv}/messages", {"body": body, "client_msg_id": cmid})
            if r.status_code in (200, 201):
                return
            assert r.status_code in (503, 504), r.text  # unavailable for now, never a 500
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{body!r} not accepted within {within}s"
        time.sleep(0.5)


def test_the_fleet_serves_and_delivers_again_after_the_whole_cluster_restarts(
    fleet: Fleet, outage_cluster: LocalCluster, register: Callable[[], Any]
) -> None:
    alice, bob = register(), register()
    created = alice.post(
        "/conversations", {"kind": "group", "title": "outage", "member_ids": [bob.id]}
    )
    assert created.status_code == 201, created.text
    conv = created.json()["id"]
    with connect(f"{fleet.ws}?token={bob.access_token}", open_timeout=10) as ws:
        assert next_frame(ws, {"ready"})["user_id"] == bob.id
        _post_until_accepted(alice, conv, "before", 10)
        assert next_frame(ws, {"message.posted"})["message"]["body"] == "before"

        outage_cluster.down()
        time.sleep(5)  # every service's reads, subscriptions and leases fail meanwhile
        assert httpx.get(f"{fleet.url('chat')}/health/ready", timeout=5).status_code == 503
        outage_cluster.up()
        fleet.wait_ready(SERVICES, timeout=60)

        # The same socket: the gateway subscribed to the conversation's channel again.
        _post_until_accepted(alice, conv, "after", 60)
        assert next_frame(ws, {"message.posted"}, 30)["message"]["body"] == "after"
    login = httpx.post(
        f"{fleet.api}/api/v1/auth/login",
        json={"username": bob.username, "password": bob.password},
        timeout=15,
    )
    assert login.status_code == 200, login.text
