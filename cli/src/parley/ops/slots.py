"""Moving hash slots between masters while clients keep working: MIGRATE in pipelined batches.

A slot moves as Redis Cluster specifies: the destination marks it IMPORTING, the source MIGRATING;
then batches of its keys (CLUSTER GETKEYSINSLOT) go over with MIGRATE, several MIGRATE commands per
round trip; finally CLUSTER SETSLOT NODE on the destination, the source and every other master.
Meanwhile clients get ASK for keys already moved and TRYAGAIN for multi-key commands over both
nodes, and MOVED once the slot has gone.

An interrupted move leaves the slot open (MIGRATING on the source, IMPORTING on the destination);
:func:`finish_open_slots` finds such slots on every master and completes them, so a reshard that
was stopped (Ctrl-C, a crash, a lost connection) is resumed by running any slot command again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from parley.ops.target import OpsError, Target
from parley.ops.topology import SLOTS, Node, Topology, myself

Progress = Callable[["Move", int], None]  # after each slot: the move and how many keys it carried


@dataclass(frozen=True)
class Move:
    slot: int
    source: Node
    destination: Node


def _migrate_args(
    target: Target, dst: Node, keys: Sequence[bytes], timeout_ms: int, *, replace: bool
) -> list[object]:
    args: list[object] = ["MIGRATE", dst.host, dst.port, "", 0, timeout_ms]
    if replace:
        args.append("REPLACE")
    if target.username and target.password:
        args += ["AUTH2", target.username, target.password]
    elif target.password:
        args += ["AUTH", target.password]
    return [*args, "KEYS", *keys]


def _send_batches(
    target: Target, src: redis.Redis, dst: Node, keys: list[bytes], batch: int, timeout_ms: int
) -> None:
    """MIGRATE ``keys`` in batches of ``batch``, all batches in one pipeline (one round trip)."""
    chunks = [keys[i : i + batch] for i in range(0, len(keys), batch)]
    pipe = src.pipeline(transaction=False)
    for chunk in chunks:
        pipe.execute_command(*_migrate_args(target, dst, chunk, timeout_ms, replace=False))  # type: ignore[no-untyped-call]
    results = pipe.execute(raise_on_error=False)
    for chunk, result in zip(chunks, results, strict=True):
        if not isinstance(result, Exception):
            continue
        if "BUSYKEY" in str(result):
            # An interrupted MIGRATE copied the key but did not delete it here: the source, which
            # still serves the slot, holds the current value.
            src.execute_command(*_migrate_args(target, dst, chunk, timeout_ms, replace=True))  # type: ignore[no-untyped-call]
        else:
            raise OpsError(f"MIGRATE to {dst.address} failed: {result}") from result


def _finalize(target: Target, topo: Topology, slot: int, src: Node, dst: Node) -> None:
    """Give ``slot`` to ``dst``: the destination first, then the source, then everyone else."""
    with target.node(dst.host, dst.port) as d:
        d.execute_command("CLUSTER SETSLOT", slot, "NODE", dst.id)
    with target.node(src.host, src.port) as s:
        s.execute_command("CLUSTER SETSLOT", slot, "NODE", dst.id)
    for m in topo.masters:
        if m.id in (src.id, dst.id):
            continue
        try:
            with target.node(m.host, m.port) as r:
                r.execute_command("CLUSTER SETSLOT", slot, "NODE", dst.id)
        except redis.RedisError:
            pass  # Gossip carries the new owner there too; this only makes it quicker.


def move_slot(
    target: Target,
    topo: Topology,
    move: Move,
    *,
    batch: int = 100,
    pipeline: int = 10,
    timeout_ms: int = 10_000,
) -> int:
    """Move one slot with its keys; returns how many keys went over. Safe to call again."""
    src, dst, slot = move.source, move.destination, move.slot
    with target.node(src.host, src.port) as s:
        with target.node(dst.host, dst.port) as d:
            d.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src.id)
        try:
            s.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst.id)
        except redis.ResponseError as e:
            if "not the owner" not in str(e):
                raise OpsError(f"{src.address} refused to migrate slot {slot}: {e}") from e
            # The source gave the slot up already (interrupted after SETSLOT NODE): just finish.
            _finalize(target, topo, slot, src, dst)
            return 0
        moved = 0
        while True:
            keys = s.execute_command("CLUSTER GETKEYSINSLOT", slot, batch * pipeline)
            if not keys:
                break
            _send_batches(target, s, dst, list(keys), batch, timeout_ms)
            moved += len(keys)
    _finalize(target, topo, slot, src, dst)
    return moved


def open_slots(target: Target, topo: Topology) -> list[Move]:
    """Slots an interrupted move left MIGRATING or IMPORTING, as the moves that complete them."""
    by_id = {n.id: n for n in topo.nodes}
    moves: dict[int, Move] = {}
    for m in topo.masters:
        own = myself(target, m)
        m = by_id[m.id]
        for slot, dst_id in own.migrating.items():
            if dst_id in by_id:
                moves[slot] = Move(slot, m, by_id[dst_id])
        for slot, src_id in own.importing.items():
            if slot not in moves and src_id in by_id:
                moves[slot] = Move(slot, by_id[src_id], m)
    return [moves[s] for s in sorted(moves)]


def finish_open_slots(target: Target, progress: Progress | None = None) -> list[Move]:
    """Complete every half-done slot move; returns the moves it completed."""
    topo = Topology.read(target)
    moves = open_slots(target, topo)
    for move in moves:
        keys = move_slot(target, topo, move)
        if progress:
            progress(move, keys)
    return moves


def execute(
    target: Target, moves: Sequence[Move], progress: Progress | None = None, **kw: int
) -> int:
    """Run ``moves`` in order (after finishing any open slot); returns the keys moved."""
    finish_open_slots(target, progress)
    topo = Topology.read(target)
    total = 0
    for move in moves:
        owner = topo.owner(move.slot)
        if owner is not None and owner.id == move.destination.id:
            continue  # Done before an interruption.
        keys = move_slot(target, topo, move, **kw)
        total += keys
        if progress:
            progress(move, keys)
    return total


# ---------------------------------------------------------------------------- plans


def plan_slots(topo: Topology, to: Node, slots: Sequence[int]) -> list[Move]:
    """Move exactly ``slots`` to ``to``, each from its current owner."""
    moves = []
    for slot in slots:
        owner = topo.owner(slot)
        if owner is None:
            raise OpsError(f"slot {slot} has no owner; assign it first (parley cluster fix)")
        if owner.id != to.id:
            moves.append(Move(slot, owner, to))
    return moves


def plan_count(topo: Topology, to: Node, count: int, sources: Sequence[Node] = ()) -> list[Move]:
    """Move ``count`` slots to ``to`` from ``sources`` (default: every other serving master),
    taken in proportion to what each owns, from the top of its slot list."""
    donors = [n for n in (sources or topo.serving) if n.id != to.id and n.slots]
    owned = sum(n.slot_count for n in donors)
    if not donors or count <= 0 or count > owned:
        raise OpsError(f"cannot move {count} slots: the sources own {owned}")
    moves: list[Move] = []
    for i, donor in enumerate(donors):
        share = (
            count - len(moves) if i == len(donors) - 1 else round(count * donor.slot_count / owned)
        )
        moves += [Move(s, donor, to) for s in donor.slot_list()[::-1][:share]]
    return moves


def plan_rebalance(topo: Topology) -> list[Move]:
    """Even out the slots over every master, empty ones included (a new master gets its share)."""
    masters = sorted(topo.masters, key=lambda n: n.id)
    if not masters:
        raise OpsError("the cluster has no master")
    want = {
        m.id: SLOTS // len(masters) + (1 if i < SLOTS % len(masters) else 0)
        for i, m in enumerate(masters)
    }
    spare: list[tuple[int, Node]] = []
    for m in masters:
        excess = m.slot_count - want[m.id]
        if excess > 0:
            spare += [(s, m) for s in m.slot_list()[::-1][:excess]]
    moves: list[Move] = []
    for m in masters:
        for _ in range(want[m.id] - m.slot_count):
            slot, donor = spare.pop()
            moves.append(Move(slot, donor, m))
    return sorted(moves, key=lambda mv: mv.slot)


def plan_drain(topo: Topology, node: Node) -> list[Move]:
    """Every slot of ``node`` to the other masters, in contiguous runs, emptiest first."""
    others = sorted((m for m in topo.masters if m.id != node.id), key=lambda m: m.slot_count)
    if not others and node.slots:
        raise OpsError(f"{node.address} is the only master: its slots have nowhere to go")
    slots = node.slot_list()
    per = -(-len(slots) // max(1, len(others)))
    return [Move(slot, node, others[i // per]) for i, slot in enumerate(slots)]
