"""The health indicator: ready means reachable with all 16384 slots served."""

from __future__ import annotations

import asyncio
import signal

import pytest

from parley.cluster import LocalCluster
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.redis.health import SLOTS, RedisHealth, check_redis

pytestmark = pytest.mark.integration


async def test_a_healthy_cluster_is_ready_with_a_latency_per_node(redis_url: str) -> None:
    client = await create_client(RedisSettings(url=redis_url))
    try:
        health = await check_redis(client)
    finally:
        await client.aclose()
    assert health.ok, health.summary()
    assert health.cluster_state == "ok"
    assert health.slots_covered == SLOTS
    assert len(health.nodes) >= 3
    assert all(latency is not None and latency >= 0 for latency in health.latency_ms.values())
    assert health.error == ""


async def test_a_single_node_is_ready_when_it_answers(test_cluster: LocalCluster) -> None:
    url = f"redis://{test_cluster.host}:{test_cluster.ports[0]}"
    client = await create_client(RedisSettings(url=url, cluster=False))
    try:
        health = await check_redis(client)
    finally:
        await client.aclose()
    assert health.ok
    assert health.cluster_state == "standalone"
    assert list(health.latency_ms) == [f"{test_cluster.host}:{test_cluster.ports[0]}"]


async def test_an_unreachable_single_node_is_not_ready_and_says_why() -> None:
    settings = RedisSettings(url="redis://127.0.0.1:1", cluster=False, socket_connect_timeout=0.2)
    client = await create_client(settings)
    try:
        health = await check_redis(client, within=1.0)
    finally:
        await client.aclose()
    assert not health.ok
    assert health.nodes[0].latency_ms is None
    assert "Error" in health.error


async def _poll_health(client: AnyRedis, *, state: str, within: float) -> RedisHealth:
    """Check until the nodes report ``state`` (they agree on a failure after the node timeout)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        health = await check_redis(client, within=1.0)
        if health.cluster_state == state or asyncio.get_running_loop().time() > deadline:
            return health
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_losing_a_master_and_its_replica_makes_redis_not_ready_until_repaired(
    disposable_cluster: LocalCluster,
) -> None:
    await asyncio.to_thread(disposable_cluster.up)
    client = await create_client(RedisSettings(url=disposable_cluster.url()))
    try:
        assert (await check_redis(client)).ok
        status = await asyncio.to_thread(disposable_cluster.status)
        master = next(n for n in status.nodes if n.role == "master" and n.slots)
        replica = next(n for n in status.nodes if n.master_id == master.node_id)
        for port in (replica.port, master.port):
            await asyncio.to_thread(disposable_cluster.stop_node, port, sig=signal.SIGKILL)

        broken = await _poll_health(client, state="fail", within=15.0)
        assert not broken.ok
        assert broken.cluster_state == "fail"
        assert broken.slots_covered == SLOTS - master.slot_count
        assert broken.latency_ms[f"127.0.0.1:{master.port}"] is None
        assert str(master.port) in broken.error

        await asyncio.to_thread(disposable_cluster.up)
        repaired = await _poll_health(client, state="ok", within=20.0)
        assert repaired.ok, repaired.summary()
        assert repaired.slots_covered == SLOTS
    finally:
        await client.aclose()
