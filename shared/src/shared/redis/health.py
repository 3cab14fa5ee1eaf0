"""Readiness of Redis as a service sees it: :func:`check_redis` returns a :class:`RedisHealth`.

Ready means: reachable, and (on a cluster) every node that answers reports ``cluster_state:ok``
with all 16384 slots served. Every node is probed in parallel, straight through its own connection
pool (no retries, no backoff), and each probe is cut after ``within`` seconds: it never hangs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode

from shared.redis.client import AnyRedis

SLOTS = 16384


@dataclass(frozen=True, slots=True)
class NodeHealth:
    """One node's answer: its PING round trip in milliseconds, or why it gave none."""

    name: str
    role: str
    latency_ms: float | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class RedisHealth:
    """The outcome of :func:`check_redis`."""

    ok: bool
    cluster_state: str
    """``ok`` / ``fail`` as the nodes report it, ``standalone`` for one server, ``unknown``."""
    slots_covered: int
    """Slots served, in the view of the least healthy node that answered."""
    nodes: tuple[NodeHealth, ...]
    error: str = ""

    @property
    def latency_ms(self) -> Mapping[str, float | None]:
        """PING latency per node (None for a node that did not answer)."""
        return {n.name: n.latency_ms for n in self.nodes}

    def summary(self) -> str:
        """One line for a readiness endpoint or a log."""
        answered = sum(1 for n in self.nodes if n.latency_ms is not None)
        text = (
            f"cluster_state={self.cluster_state} slots={self.slots_covered}/{SLOTS} "
            f"nodes={answered}/{len(self.nodes)}"
        )
        return f"{text}: {self.error}" if self.error else text


async def check_redis(client: AnyRedis, *, within: float = 2.0) -> RedisHealth:
    """Probe ``client``'s Redis; never takes much longer than ``within`` seconds."""
    if isinstance(client, RedisCluster):
        return await _check_cluster(client, within)
    return await _check_single(client, within)


async def _check_single(client: Redis, within: float) -> RedisHealth:
    kwargs = client.connection_pool.connection_kwargs
    name = f"{kwargs.get('host', kwargs.get('path', '?'))}:{kwargs.get('port', '')}"
    started = time.perf_counter()
    try:
        async with asyncio.timeout(within):
            # Straight to a pooled connection: the client's own retries would outlast ``within``.
            connection = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                await connection.send_command("PING")
                await connection.read_response()
            finally:
                await client.connection_pool.release(connection)
    except Exception as e:
        node = NodeHealth(name, "standalone", None, _describe(e, within))
        return RedisHealth(False, "unknown", 0, (node,), node.error)
    node = NodeHealth(name, "standalone", _since(started))
    return RedisHealth(True, "standalone", SLOTS, (node,))


async def _check_cluster(client: RedisCluster, within: float) -> RedisHealth:
    manager = client.nodes_manager
    # After CLUSTERDOWN redis-py closes its nodes; the startup nodes still name the cluster.
    known = {**manager.startup_nodes, **manager.nodes_cache}
    if not known:
        return RedisHealth(False, "unknown", 0, (), "the client knows no node")
    probes = await asyncio.gather(*(_probe(node, within) for node in known.values()))
    nodes = tuple(sorted((health for health, _ in probes), key=lambda n: n.name))
    infos = [info for _, info in probes if info is not None]
    errors = [f"{n.name}: {n.error}" for n in nodes if n.error]
    if not infos:
        return RedisHealth(False, "unknown", 0, nodes, "; ".join(errors) or "no node answered")
    states = {str(info.get("cluster_state", "unknown")) for info in infos}
    state = "ok" if states == {"ok"} else next(s for s in sorted(states) if s != "ok")
    covered = min(int(info.get("cluster_slots_ok", 0)) for info in infos)
    ok = state == "ok" and covered == SLOTS
    if not ok:
        errors.insert(0, f"cluster_state:{state}, {covered} of {SLOTS} slots served")
    return RedisHealth(ok, state, covered, nodes, "; ".join(errors))


async def _probe(node: ClusterNode, within: float) -> tuple[NodeHealth, Mapping[str, Any] | None]:
    role = node.server_type or "unknown"
    started = time.perf_counter()
    try:
        async with asyncio.timeout(within):
            await node.execute_command("PING")
            latency = _since(started)
            info = await node.execute_command("CLUSTER INFO")
    except Exception as e:
        return NodeHealth(node.name, role, None, _describe(e, within)), None
    parsed = info if isinstance(info, Mapping) else _parse_info(info)
    return NodeHealth(node.name, role, latency), parsed


def _parse_info(raw: Any) -> Mapping[str, str]:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _describe(error: BaseException, within: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {within}s"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
