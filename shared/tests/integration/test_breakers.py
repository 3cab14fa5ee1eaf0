"""Circuit breakers on real parts: a cluster losing a node, then all of them; a database that
cannot be opened; a command target nobody answers."""

from __future__ import annotations

import asyncio
import shutil
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import msgspec
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError

from contracts.base import Command, Envelope, ErrorCode, Reply
from contracts.topology import StreamSpec
from parley.cluster import LocalCluster
from shared.breaker import BreakerSettings, State
from shared.bus import (
    Consumer,
    ConsumerSettings,
    Publisher,
    Requester,
    RequestTimeoutError,
    TargetCircuitOpen,
)
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.redis.errors import RedisCircuitOpen, RedisUnavailable
from shared.redis.resilient import ResilientRedisCluster
from shared.service.database import Database, DatabaseCircuitOpen

pytestmark = pytest.mark.integration

QUICK = BreakerSettings(failures=3, window=10.0, cooldown=1.0)


def _retries() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "parley_redis_retries"
        for sample in metric.samples
        if sample.name == "parley_redis_retries_total"
    )


async def _cluster_client(cluster: LocalCluster, **options: object) -> ResilientRedisCluster:
    client = await create_client(RedisSettings(url=cluster.url(), breaker=QUICK, **options))  # type: ignore[arg-type]
    assert isinstance(client, ResilientRedisCluster)
    return client


@pytest.mark.slow
async def test_a_stopped_nodes_breaker_opens_while_the_other_nodes_stay_closed(
    disposable_cluster: LocalCluster,
) -> None:
    await asyncio.to_thread(disposable_cluster.up)
    client = await _cluster_client(disposable_cluster, retry_attempts=1, retry_base=0.01)
    try:
        keys = [f"test:breaker:{{{uuid.uuid4().hex[:10]}}}" for _ in range(60)]
        await asyncio.gather(*(client.set(k, "v", ex=60) for k in keys))
        owner = {k: client.nodes_manager.get_node_from_slot(client.keyslot(k)).name for k in keys}
        victim = owner[keys[0]]
        port = int(victim.rpartition(":")[2])

        await asyncio.to_thread(disposable_cluster.stop_node, port, sig=signal.SIGKILL)
        victim_keys = [k for k in keys if owner[k] == victim]
        for key in victim_keys[:4]:
            with pytest.raises(RedisUnavailable):
                await client.get(key)

        assert client.node_breakers.get(victim).state is State.OPEN
        others = {owner[k] for k in keys} - {victim}
        assert len(others) == 2
        for key in (k for k in keys if owner[k] != victim):
            assert await client.get(key) == b"v"
        for name in others:
            assert client.node_breakers.get(name).state is State.CLOSED
        gauge = REGISTRY.get_sample_value("parley_breaker_state", {"breaker": f"redis:{victim}"})
        assert gauge == 2

        # The open breaker does not stand in the way of the failover: the replica's promotion
        # shows in the slot map, and the victim's keys are served again by the same client.
        async with asyncio.timeout(30):
            while True:
                try:
                    assert await client.get(victim_keys[0]) == b"v"
                    break
                except RedisUnavailable:
                    await asyncio.sleep(0.3)
        assert client.nodes_manager.get_node_from_slot(client.keyslot(victim_keys[0])).name != (
            victim
        )
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_with_the_whole_cluster_down_commands_fail_at_once_then_serve_when_it_is_back(
    disposable_cluster: LocalCluster,
) -> None:
    await asyncio.to_thread(disposable_cluster.up)
    client = await _cluster_client(disposable_cluster)
    key = f"test:breaker:{{{uuid.uuid4().hex[:10]}}}"
    try:
        await client.set(key, "before")
        await asyncio.to_thread(disposable_cluster.down)

        tries = 0
        while client.slot_map_breaker.state is not State.OPEN:
            tries += 1
            assert tries <= QUICK.failures + 2, "the slot-map breaker never opened"
            with pytest.raises(RedisUnavailable):
                await client.get(key)

        # Open: each command is refused without a connection attempt or a retry.
        retries_before = _retries()
        for _ in range(50):
            with pytest.raises(RedisCircuitOpen) as refused:
                await client.get(key)
            assert 0 < refused.value.retry_after <= QUICK.cooldown
        assert _retries() == retries_before

        await asyncio.to_thread(disposable_cluster.up)
        async with asyncio.timeout(30):
            while True:
                try:
                    assert await client.get(key) == b"before"  # AOF kept it
                    break
                except RedisUnavailable:
                    await asyncio.sleep(0.2)
        assert client.slot_map_breaker.state is State.CLOSED
    finally:
        await client.aclose()


async def test_a_database_that_cannot_be_opened_fails_fast_then_serves_once_it_can(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    db = Database(f"sqlite+aiosqlite:///{folder}/service.db", name="t", breaker=QUICK)
    shutil.rmtree(folder)  # the file cannot be created now: every connection attempt fails
    try:
        for _ in range(QUICK.failures):
            with pytest.raises(OperationalError, match="unable to open database file"):
                await db.ping()
        assert db.breaker.state is State.OPEN
        with pytest.raises(DatabaseCircuitOpen) as refused:
            await db.ping()
        assert refused.value.breaker == "database:t"

        folder.mkdir()
        await asyncio.sleep(QUICK.cooldown)
        await db.ping()  # the probe
        assert db.breaker.state is State.CLOSED
    finally:
        await db.close()


class Said(msgspec.Struct, frozen=True, kw_only=True):
    text: str


class Say(Command, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "breakertest.say"
    STREAM: ClassVar[str] = "breakertest.commands"
    KEY: ClassVar[str | None] = "key"
    RESULT: ClassVar[type[msgspec.Struct]] = Said
    TIMEOUT: ClassVar[float] = 2.0

    key: str
    text: str


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    c = await create_client(RedisSettings(url=redis_url))
    yield c
    await c.aclose()


def _spec() -> StreamSpec:
    owner = f"t{uuid.uuid4().hex[:10]}"
    return StreamSpec(name=f"{owner}.commands", owner=owner, partitions=1, max_len=10_000)


def _consumer(client: AnyRedis, spec: StreamSpec, handler: object) -> Consumer:
    return Consumer(
        client,
        group="sayer",
        handlers={Say: handler},  # type: ignore[dict-item]
        settings=ConsumerSettings(block_ms=100, lease_ttl=1.5, backoff_base=0.01),
        stream_of=lambda _: spec,
    )


async def test_a_target_nobody_answers_is_refused_at_once_then_probed_when_it_answers(
    client: AnyRedis,
) -> None:
    spec = _spec()
    executed: list[str] = []

    async def say(cmd: Say, env: Envelope) -> Reply[Said]:
        executed.append(cmd.text)
        return Reply.success(Said(text=cmd.text))

    pub = Publisher(client, producer="caller", stream_of=lambda _: spec)
    requester = Requester(client, pub, instance_id=uuid.uuid4().hex, breaker=QUICK)
    async with requester:
        for n in range(QUICK.failures):
            with pytest.raises(RequestTimeoutError):
                await requester.request(Say(key="a", text=f"unanswered {n}"), timeout=0.2)
        with pytest.raises(TargetCircuitOpen) as refused:
            await requester.request(Say(key="a", text="refused"))
        assert refused.value.breaker == f"command:{Say.STREAM}"

        async with _consumer(client, spec, say):
            await asyncio.sleep(QUICK.cooldown)
            reply = await requester.request(Say(key="a", text="probe"), timeout=5)
        assert reply.ok
        assert requester.breakers.get(Say.STREAM).state is State.CLOSED
    assert "refused" not in executed  # never sent
    assert "probe" in executed


async def test_a_command_whose_dependency_is_open_is_answered_unavailable_at_once(
    client: AnyRedis,
) -> None:
    spec = _spec()
    attempts: list[str] = []

    async def say(cmd: Say, env: Envelope) -> Reply[Said]:
        attempts.append(cmd.text)
        raise DatabaseCircuitOpen("database:t", 2.5)

    pub = Publisher(client, producer="caller", stream_of=lambda _: spec)
    async with (
        _consumer(client, spec, say),
        Requester(client, pub, instance_id=uuid.uuid4().hex) as requester,
    ):
        reply = await requester.request(Say(key="a", text="now"), timeout=5)
    assert not reply.ok and reply.error is not None
    assert reply.error.code is ErrorCode.UNAVAILABLE
    assert reply.error.retry_after == 2.5
    assert attempts == ["now"], "answered, not retried"
