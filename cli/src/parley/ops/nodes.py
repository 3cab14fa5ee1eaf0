"""Joining, removing and failing over nodes; giving slots without an owner a new one."""

from __future__ import annotations

import contextlib

import redis

from parley.ops import slots as slot_moves
from parley.ops.target import OpsError, Target, split_address
from parley.ops.topology import SLOTS, Node, Topology, cluster_nodes, ranges, wait_for


def _own_id(target: Target, host: str, port: int) -> str:
    with target.node(host, port) as r:
        value = r.execute_command("CLUSTER MYID")
    return value.decode() if isinstance(value, bytes) else str(value)


def add_node(
    target: Target, address: str, *, replica_of: str | None = None, timeout: float = 30.0
) -> Node:
    """Join the empty node at ``address``: as a master without slots, or a replica of a master."""
    host, port = split_address(address)
    topo = Topology.read(target)
    master = topo.find(replica_of) if replica_of else None
    if master is not None and not master.is_master:
        raise OpsError(f"{replica_of} is a replica; name a master")
    try:
        with target.node(host, port) as r:
            known = len(cluster_nodes(target, host, port))
            if known > 1 or r.dbsize() > 0:
                raise OpsError(
                    f"{address} is not empty (it knows {known} nodes, holds {r.dbsize()} keys)"
                )
    except redis.RedisError as e:
        raise OpsError(f"cannot reach the new node {address}: {e}") from e
    new_id = _own_id(target, host, port)
    seed_host, seed_port = target.seed
    with target.node(seed_host, seed_port) as r:
        r.execute_command("CLUSTER MEET", host, port)

    live = {n.id for n in topo.nodes if not n.failed}

    def joined() -> bool:
        return live <= {n.id for n in cluster_nodes(target, host, port)}

    wait_for(f"{address} to learn the cluster", joined, timeout)
    if master is not None:
        wait_for(
            f"{address} to learn of {master.address}",
            lambda: any(n.id == master.id for n in cluster_nodes(target, host, port)),
            timeout,
        )
        with target.node(host, port) as r:
            r.execute_command("CLUSTER REPLICATE", master.id)

        def in_sync() -> bool:
            with target.node(host, port) as r:
                return bool(r.info("replication").get("master_link_status") == "up")

        wait_for(f"{address} to sync from {master.address}", in_sync, timeout)
    wait_for(
        "every node to know the new one",
        lambda: all(
            any(n.id == new_id for n in cluster_nodes(target, m.host, m.port)) for m in topo.masters
        ),
        timeout,
    )

    def sees_the_cluster_ok() -> bool:  # it knows every slot's owner: it can take keys (MIGRATE)
        with target.node(host, port) as r:
            return "cluster_state:ok" in r.execute_command("CLUSTER INFO").decode()

    healthy = topo.covered() == SLOTS and not any(n.failed for n in topo.nodes)
    if healthy:  # (not while a shard is lost: the disaster procedure adds a node then)
        wait_for(f"{address} to see every slot served", sees_the_cluster_ok, timeout)
    return Topology.read(target).find(new_id)


def remove_node(
    target: Target, ref: str, *, progress: slot_moves.Progress | None = None, timeout: float = 30.0
) -> list[Node]:
    """Drain the node's slots to the other masters, then make every node forget it.

    A master's replicas go with it (they would have nothing to replicate); returns the removed
    nodes.
    """
    topo = Topology.read(target)
    node = topo.find(ref)
    seed_host, seed_port = target.seed
    if node.port == seed_port and node.host in (seed_host, "127.0.0.1"):
        raise OpsError(
            f"{node.address} is the node this command connects through; use another --url"
        )
    # Its replicas as they are now: a master that gives up its last slot becomes a replica of the
    # node that took it (cluster-allow-replica-migration), and so do its replicas.
    leaving = [node, *topo.replicas_of(node.id)] if node.is_master else [node]
    if node.is_master and node.slots:
        slot_moves.execute(target, slot_moves.plan_drain(topo, node), progress)
        topo = Topology.read(target)
        node = topo.find(node.id)
        if node.slots:
            raise OpsError(f"{node.address} still owns {node.slot_count} slots after draining")
    ids = {n.id for n in leaving}
    for gone in reversed(leaving):  # replicas first: a master refuses RESET while it has keys
        # Left alone it would gossip itself back in once the others' 60 s ban on it ends; reset
        # (a replica flushes its copy: give it time), it forgets the cluster for good.
        try:
            with target.node(gone.host, gone.port, timeout=30.0) as r:
                r.execute_command("CLUSTER RESET", "HARD")
        except (redis.ConnectionError, redis.TimeoutError) as e:
            if not gone.failed:
                raise OpsError(f"{gone.address} did not answer CLUSTER RESET: {e}") from e
        except redis.ResponseError as e:
            raise OpsError(f"{gone.address} refused CLUSTER RESET: {e}") from e
    staying = [n for n in topo.nodes if n.id not in ids and not n.failed]
    for n in staying:
        with target.node(n.host, n.port) as r:
            for gone in leaving:
                try:
                    r.execute_command("CLUSTER FORGET", gone.id)
                except redis.ResponseError as e:
                    if "Unknown node" not in str(e):
                        raise OpsError(f"{n.address} would not forget {gone.address}: {e}") from e
    wait_for(
        "every node to forget the removed ones",
        lambda: all(
            not ids & {x.id for x in cluster_nodes(target, n.host, n.port)} for n in staying
        ),
        timeout,
    )
    return leaving


def failover(target: Target, ref: str, *, force: bool = False, timeout: float = 30.0) -> Node:
    """Promote a replica: ``ref`` names the replica, or a master (its most up-to-date replica)."""
    topo = Topology.read(target)
    node = topo.find(ref)
    if node.is_master:
        candidates = [r for r in topo.replicas_of(node.id) if not r.failed]
        if not candidates:
            raise OpsError(f"master {node.address} has no live replica to fail over to")

        def offset(n: Node) -> int:
            with target.node(n.host, n.port) as r:
                return int(r.info("replication").get("slave_repl_offset", 0))

        node = max(candidates, key=offset)
    with target.node(node.host, node.port) as r:
        r.execute_command("CLUSTER FAILOVER", *(["FORCE"] if force else []))

    def promoted() -> bool:
        with target.node(node.host, node.port) as r:
            return bool(r.info("replication").get("role") == "master")

    wait_for(f"{node.address} to become a master", promoted, timeout)

    old_master = node.master_id

    def everyone_agrees() -> bool:
        # Later commands plan from the seed's view: it must show the new master, and the old one
        # as a replica (unless it is down).
        for m in topo.nodes:
            if m.failed or m.id == node.id:
                continue
            view = {n.id: n for n in cluster_nodes(target, m.host, m.port)}
            if not view[node.id].is_master:
                return False
            was = view.get(old_master)
            if was is not None and was.is_master and not was.failed:
                return False
        return True

    wait_for("every node to see the new master", everyone_agrees, timeout)
    return node


def fix(target: Target, to: str, *, timeout: float = 30.0) -> list[tuple[int, int]]:
    """Forget failed nodes and give every slot without a live owner to the master ``to``.

    The disaster step after a master and all its replicas are lost; returns the slots assigned
    (their keys are gone until ``parley cluster restore --slots`` brings them back).
    """
    topo = Topology.read(target)
    new_owner = topo.find(to)
    if not new_owner.is_master:
        raise OpsError(f"{to} is a replica; name a master")
    failed = [n for n in topo.nodes if n.failed]
    live = [n for n in topo.nodes if not n.failed]
    for n in live:
        with target.node(n.host, n.port) as r:
            for dead in failed:
                with contextlib.suppress(redis.ResponseError):  # Already forgotten there.
                    r.execute_command("CLUSTER FORGET", dead.id)
    owned = {s for m in live if m.is_master for a, b in m.slots for s in range(a, b + 1)}
    orphans = ranges(s for s in range(SLOTS) if s not in owned)
    with target.node(new_owner.host, new_owner.port) as r:
        for a, b in orphans:
            r.execute_command("CLUSTER ADDSLOTSRANGE", a, b)

    def covered() -> bool:
        return all(
            Topology(tuple(cluster_nodes(target, n.host, n.port))).covered() == SLOTS for n in live
        )

    wait_for("every node to see all slots covered", covered, timeout)
    return orphans
