"""``parley cluster status --url``: shards, slots, roles, replication lag and memory per node."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import redis

from parley.ops.target import Target
from parley.ops.topology import SLOTS, Topology, myself, ranges


@dataclass(frozen=True)
class NodeReport:
    id: str
    address: str
    role: str
    master_id: str
    slots: int
    slot_ranges: list[tuple[int, int]]
    open_slots: dict[str, str]
    replication_offset: int
    lag_bytes: int | None  # replicas: their master's offset minus theirs
    used_memory: int
    keys: int
    link: str
    error: str = ""


@dataclass(frozen=True)
class ClusterReport:
    state: str
    slots_covered: int
    nodes: list[NodeReport]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _info(target: Target, host: str, port: int) -> dict[str, Any]:
    with target.node(host, port, timeout=3.0) as r:
        info: dict[str, Any] = {}
        for section in ("replication", "memory", "keyspace"):
            info.update(r.info(section))
        info["cluster_state"] = next(
            (
                line.split(":", 1)[1].strip()
                for line in r.execute_command("CLUSTER INFO").decode().splitlines()
                if line.startswith("cluster_state:")
            ),
            "?",
        )
        return info


def report(target: Target) -> ClusterReport:
    """Ask every node about itself; problems name what is not right."""
    topo = Topology.read(target)
    infos: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for n in topo.nodes:
        if n.failed:
            errors[n.id] = "marked failed by the cluster"
            continue
        try:
            infos[n.id] = _info(target, n.host, n.port)
        except redis.RedisError as e:
            errors[n.id] = str(e)
    problems: list[str] = []
    nodes: list[NodeReport] = []
    for n in topo.nodes:
        info = infos.get(n.id, {})
        offset = int(info.get("master_repl_offset", 0))
        lag: int | None = None
        if not n.is_master:
            master_info = infos.get(n.master_id)
            replica_offset = int(info.get("slave_repl_offset", offset))
            if master_info is not None:
                lag = max(0, int(master_info.get("master_repl_offset", 0)) - replica_offset)
            offset = replica_offset
            if info and info.get("master_link_status") != "up":
                problems.append(f"replica {n.address} is not in sync with its master")
        own = n
        if n.is_master and n.id in infos:
            own = myself(target, n)
        open_slots = {str(s): f"migrating to {d[:8]}" for s, d in own.migrating.items()}
        open_slots |= {str(s): f"importing from {d[:8]}" for s, d in own.importing.items()}
        if open_slots:
            problems.append(f"node {n.address} has open slots {sorted(open_slots, key=int)}")
        if n.id in errors:
            problems.append(f"node {n.address}: {errors[n.id]}")
        elif info.get("cluster_state") != "ok":
            problems.append(f"node {n.address} reports cluster_state:{info.get('cluster_state')}")
        keys = int(info.get("db0", {}).get("keys", 0)) if isinstance(info.get("db0"), dict) else 0
        nodes.append(
            NodeReport(
                id=n.id,
                address=n.address,
                role="master" if n.is_master else "replica",
                master_id=n.master_id,
                slots=n.slot_count,
                slot_ranges=list(n.slots),
                open_slots=open_slots,
                replication_offset=offset,
                lag_bytes=lag,
                used_memory=int(info.get("used_memory", 0)),
                keys=keys,
                link=n.link,
                error=errors.get(n.id, ""),
            )
        )
    covered = topo.covered()
    if covered != SLOTS:
        problems.append(f"{covered} of {SLOTS} slots covered")
    for m in topo.serving:
        if not topo.replicas_of(m.id):
            problems.append(f"master {m.address} is without a replica")
    seed = infos.get(topo.nodes[0].id, {}) if topo.nodes else {}
    state = "ok" if covered == SLOTS and not problems else str(seed.get("cluster_state", "?"))
    return ClusterReport(state=state, slots_covered=covered, nodes=nodes, problems=problems)


def format_ranges(slot_ranges: list[tuple[int, int]]) -> str:
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in slot_ranges) or "-"


__all__ = ["ClusterReport", "NodeReport", "format_ranges", "ranges", "report"]
