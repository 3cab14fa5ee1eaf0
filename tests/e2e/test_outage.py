"""The fleet through a whole-cluster outage: every Redis node stopped, then started again.

A fleet and a cluster of its own (``PARLEY_TEST_OUTAGE_PORTS``, 7191-7196), since the outage would
break every other test's. The nodes keep their data (AOF) and cluster configuration, as after a
power cut; the services are not restarted. While the cluster is down, the gateway's circuit
breakers open and it refuses requests at once (503 with Retry-After) instead of spending its
Redis retry budget on each.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
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


def _gateway_samples(fleet: Fleet, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The gateway's samples of one metric, by their labels."""
    text = httpx.get(f"{fleet.admin_url('gateway')}/metrics", timeout=5).text
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def _open_breakers(fleet: Fleet) -> set[str]:
    states = _gateway_samples(fleet, "parley_breaker_state")
    return {dict(labels)["breaker"] for labels, value in states.items() if value == 2}


def _retries(fleet: Fleet) -> float:
    return sum(_gateway_samples(fleet, "parley_redis_retries_total").values())


def _refused_while_down(fleet: Fleet, user: Any, conv: str) -> None:
    """With the cluster down: once the gateway's breakers are open, requests are refused with
    503 and Retry-After, and they no longer spend Redis retries (each would spend its budget)."""
    deadline = time.monotonic() + 30
    while "redis:slot-map" not in _open_breakers(fleet):
        assert time.monotonic() < deadline, "the gateway's slot-map breaker did not open"
        r = user.post(f"/conversations/{conv}/messages", {"body": "down", "client_msg_id": "x"})
        assert r.status_code in (503, 504), r.text
    retries_before = _retries(fleet)
    refused = 20
    for n in range(refused):
        body = {"body": f"down {n}", "client_msg_id": uuid.uuid4().hex}
        r = user.post(f"/conversations/{conv}/messages", body)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "unavailable"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        r = user.get(f"/conversations/{conv}/messages")
        assert r.status_code == 503, r.text
        assert "Retry-After" in r.headers
    # Without breakers every request spends several retries (its rate limits alone); with them
    # open, only the odd half-open probe does.
    assert _retries(fleet) - retries_before < refused / 2


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
        # Every service's reads, subscriptions and leases fail meanwhile.
        _refused_while_down(fleet, alice, conv)
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
