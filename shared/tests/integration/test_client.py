"""The Redis client on the real test cluster: pool waits, redirections, shutdown, single node."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis_asyncio
from prometheus_client import REGISTRY
from redis.exceptions import RedisError

from parley.cluster import LocalCluster
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.redis.errors import PoolExhausted, TopologyUnavailable
from shared.redis.resilient import ResilientRedisCluster

pytestmark = pytest.mark.integration


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _tag() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
async def one_connection_client(redis_url: str) -> AsyncIterator[AnyRedis]:
    client = await create_client(RedisSettings(url=redis_url, max_connections=1, pool_timeout=0.3))
    yield client
    await client.aclose()


async def _clients_named(cluster: LocalCluster, name: str) -> int:
    count = 0
    for port in cluster.ports:
        async with redis_asyncio.Redis(host=cluster.host, port=port) as node:
            listing = await node.client_list()
            count += sum(1 for entry in listing if entry.get("name") == name)
    return count


async def test_commands_read_back_what_they_wrote(redis_url: str) -> None:
    client = await create_client(RedisSettings(url=redis_url))
    try:
        key = f"test:client:{{{_tag()}}}:value"
        await client.set(key, b"hello", ex=30)
        assert await client.get(key) == b"hello"
    finally:
        await client.aclose()


async def test_a_full_pool_makes_callers_wait_instead_of_failing(redis_url: str) -> None:
    client = await create_client(RedisSettings(url=redis_url, max_connections=1, pool_timeout=5.0))
    tag = _tag()
    waits_before = _metric("parley_redis_pool_waits_total")
    try:
        # BLPOP holds the slot's only connection for a while; the GET must queue behind it.
        blocked = asyncio.ensure_future(client.blpop([f"test:client:{{{tag}}}:list"], timeout=0.5))
        await asyncio.sleep(0.05)
        await client.set(f"test:client:{{{tag}}}:value", b"after", ex=30)
        assert await blocked is None
        assert await client.get(f"test:client:{{{tag}}}:value") == b"after"
    finally:
        await client.aclose()
    assert _metric("parley_redis_pool_waits_total") > waits_before


async def test_a_pool_that_stays_full_fails_with_a_typed_error_after_the_bound(
    one_connection_client: AnyRedis,
) -> None:
    tag = _tag()
    timeouts_before = _metric("parley_redis_pool_wait_timeouts_total")
    blocked = asyncio.ensure_future(
        one_connection_client.blpop([f"test:client:{{{tag}}}:list"], timeout=2)
    )
    await asyncio.sleep(0.05)
    with pytest.raises(PoolExhausted, match="no free connection"):
        await one_connection_client.get(f"test:client:{{{tag}}}:value")
    assert _metric("parley_redis_pool_wait_timeouts_total") == timeouts_before + 1
    # The holder is unaffected and the pool serves again once it is done.
    assert await blocked is None
    assert await one_connection_client.get(f"test:client:{{{tag}}}:value") is None


async def test_aclose_leaves_no_connection_open_on_any_node(
    redis_url: str, test_cluster: LocalCluster
) -> None:
    name = f"parley-test-{_tag()}"
    client = await create_client(RedisSettings(url=redis_url, client_name=name))
    # Touch every master (keys spread over slots) and every node (PING to all of them).
    await asyncio.gather(*(client.set(f"test:client:{{{_tag()}}}:k", 1, ex=30) for _ in range(30)))
    assert isinstance(client, redis_asyncio.RedisCluster)
    await client.execute_command("PING", target_nodes=client.get_nodes())
    assert await _clients_named(test_cluster, name) >= 3

    await client.aclose()

    for _ in range(50):  # the servers notice a closed socket on their next event loop turn
        if await _clients_named(test_cluster, name) == 0:
            break
        await asyncio.sleep(0.05)
    assert await _clients_named(test_cluster, name) == 0


async def test_a_stale_slot_map_is_corrected_through_moved(redis_url: str) -> None:
    client = await create_client(RedisSettings(url=redis_url))
    assert isinstance(client, redis_asyncio.RedisCluster)
    try:
        key = f"test:client:{{{_tag()}}}:moved"
        await client.set(key, b"here", ex=30)
        slot = client.keyslot(key)
        owner = client.nodes_manager.slots_cache[slot]
        wrong = next(n for n in client.get_primaries() if n.name != owner[0].name)
        client.nodes_manager.slots_cache[slot] = [wrong]  # as if the slot had moved meanwhile
        moved_before = _metric("parley_redis_redirections_total", kind="moved")

        assert await client.get(key) == b"here"

        assert _metric("parley_redis_redirections_total", kind="moved") == moved_before + 1
        assert client.nodes_manager.slots_cache[slot][0].name == owner[0].name
    finally:
        await client.aclose()


async def test_command_latency_is_recorded_by_command_name(redis_url: str) -> None:
    client = await create_client(RedisSettings(url=redis_url))
    try:
        before = _metric("parley_redis_command_duration_seconds_count", command="HEXISTS")
        await client.hexists(f"test:client:{{{_tag()}}}:nothing", "field")
        after = _metric("parley_redis_command_duration_seconds_count", command="HEXISTS")
        assert after == before + 1
    finally:
        await client.aclose()


async def test_an_unreachable_cluster_fails_at_creation_with_a_typed_error() -> None:
    settings = RedisSettings(
        url="redis://127.0.0.1:1", socket_connect_timeout=0.2, retry_attempts=0
    )
    with pytest.raises(TopologyUnavailable, match="cannot be connected"):
        await create_client(settings)


async def test_a_total_bound_holds_over_every_node_under_a_burst(
    redis_url: str, test_cluster: LocalCluster
) -> None:
    """max_connections_total bounds the sum over the nodes, not each node's pool."""
    names = {bound: f"parley-test-{_tag()}" for bound in ("node", "total")}
    per_node = RedisSettings(
        url=redis_url, client_name=names["node"], max_connections=8, pool_timeout=10.0
    )
    total = per_node.model_copy(update={"client_name": names["total"], "max_connections_total": 6})
    counts = {}
    for bound, settings in (("node", per_node), ("total", total)):
        client = await create_client(settings)
        try:
            # BLPOPs hold their connections a while: a burst spread over every primary.
            keys = [f"test:client:{{{_tag()}}}:list" for _ in range(30)]
            got = await asyncio.gather(*(client.blpop([k], timeout=0.1) for k in keys))
            assert got == [None] * 30  # every command ran: waited for a connection, none failed
            counts[bound] = await _clients_named(test_cluster, names[bound])
        finally:
            await client.aclose()
    assert counts["node"] > 6  # the per-node bound alone lets the burst open more
    assert counts["total"] <= 6


async def test_a_single_node_client_speaks_the_same_commands(
    test_cluster: LocalCluster,
) -> None:
    name = f"parley-test-{_tag()}"
    url = f"redis://{test_cluster.host}:{test_cluster.ports[0]}"
    client = await create_client(RedisSettings(url=url, cluster=False, client_name=name))
    assert not isinstance(client, redis_asyncio.RedisCluster)
    assert await client.ping() is True
    assert await _clients_named(test_cluster, name) == 1
    await client.aclose()
    for _ in range(50):
        if await _clients_named(test_cluster, name) == 0:
            break
        await asyncio.sleep(0.05)
    assert await _clients_named(test_cluster, name) == 0


async def test_commands_split_by_slot_wait_for_connections_like_any_other(redis_url: str) -> None:
    client = await create_client(RedisSettings(url=redis_url, max_connections=2, pool_timeout=5.0))
    try:
        keys = [f"test:client:{{{_tag()}}}:k" for _ in range(400)]
        await asyncio.gather(*(client.set(key, 1, ex=30) for key in keys))
        assert await client.exists(*keys) == len(keys)
        # Hundreds of concurrent deletes on a two-connection pool queue instead of failing.
        deleted = await asyncio.gather(*(client.delete(key) for key in keys))
        assert sum(deleted) == len(keys)
        assert await client.exists(*keys) == 0
    finally:
        await client.aclose()


async def test_a_client_starts_from_a_seed_when_the_url_node_is_down(redis_url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    live = redis_url.removeprefix("redis://")
    client = await create_client(
        RedisSettings(url=f"redis://127.0.0.1:{dead}", seeds=(live,), retry_attempts=0)
    )
    try:
        key = f"test:client:{{{_tag()}}}:seed"
        await client.set(key, b"via seed", ex=30)
        assert await client.get(key) == b"via seed"
    finally:
        await client.aclose()


async def _getkeys_calls(client: AnyRedis) -> int:
    total = 0
    assert isinstance(client, redis_asyncio.RedisCluster)
    for node in client.get_nodes():
        stats = await client.info("commandstats", target_nodes=node)
        total += int(stats.get("cmdstat_command|getkeys", {}).get("calls", 0))
    return total


async def test_stream_reads_find_their_slot_without_asking_the_server(redis_url: str) -> None:
    client = await create_client(RedisSettings(url=redis_url))
    try:
        stream = f"test:client:{{{_tag()}}}:stream"
        await client.xadd(stream, {"f": "v"})
        await client.xgroup_create(stream, "g", id="0")
        before = await _getkeys_calls(client)
        for _ in range(5):
            await client.xreadgroup("g", "c", {stream: ">"}, count=10)
            await client.xread({stream: "0"}, count=10)
        got = await client.xread({stream: "0"}, count=10)
        assert got[0][1][0][1] == {b"f": b"v"}
        assert await _getkeys_calls(client) == before
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def _written(redis_url: str, count: int) -> AsyncIterator[tuple[AnyRedis, list[str]]]:
    """A client, and ``count`` keys on many slots it has set to ``v``."""
    client = await create_client(RedisSettings(url=redis_url))
    try:
        keys = [f"t:{{{_tag()}}}:reset" for _ in range(count)]
        await asyncio.gather(*(client.set(key, "v") for key in keys))
        yield client, keys
    finally:
        await client.aclose()


async def _reset_every_connection(client: AnyRedis) -> None:
    """What redis-py does on a slot-map reset, twenty times while commands are in flight."""
    for _ in range(20):
        await asyncio.sleep(0)
        await client.nodes_manager.aclose()  # type: ignore[union-attr]


async def test_commands_in_flight_when_redis_py_resets_every_connection_are_retried(
    redis_url: str,
) -> None:
    # redis-py closes every node's connections, those in use included, on CLUSTERDOWN, an
    # uncovered slot or every fifth MOVED; a command between its connection check and its write
    # then met a closed writer and failed with AttributeError, which no retry loop knows.
    async with _written(redis_url, 200) as (client, keys):
        results, _ = await asyncio.gather(
            asyncio.gather(*(client.get(key) for key in keys), return_exceptions=True),
            _reset_every_connection(client),
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures == []
        assert set(results) == {b"v"}


async def test_pipelines_in_flight_when_every_connection_is_reset_fail_typed_or_succeed(
    redis_url: str,
) -> None:
    async with _written(redis_url, 120) as (client, keys):

        async def four(start: int) -> list[object]:
            async with client.pipeline(transaction=False) as pipe:
                for key in keys[start : start + 4]:
                    pipe.get(key)
                return list(await pipe.execute())

        results, _ = await asyncio.gather(
            asyncio.gather(*(four(n) for n in range(0, 120, 4)), return_exceptions=True),
            _reset_every_connection(client),
        )
        untyped = [
            r for r in results if isinstance(r, BaseException) and not isinstance(r, RedisError)
        ]
        assert untyped == []
        assert any(r == [b"v"] * 4 for r in results)


async def test_an_ask_redirect_to_a_node_missing_from_the_map_adds_the_node(redis_url: str) -> None:
    client = await create_client(RedisSettings(url=redis_url))
    try:
        assert isinstance(client, ResilientRedisCluster)
        await client.ping()
        manager = client.nodes_manager
        name = next(iter(manager.nodes_cache))
        del manager.nodes_cache[name]  # as for a master that joined after the last map refresh
        node = client.get_node(node_name=name)  # what redis-py asks when it follows ASK
        assert node is not None and manager.nodes_cache[name] is node
        assert await node.execute_command("PING")
    finally:
        await client.aclose()
