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


class Connections:
    """One open connection per node for a whole reshard (not one per slot and command)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._open: dict[str, redis.Redis] = {}

    def __call__(self, node: Node) -> redis.Redis:
        if node.id not in self._open:
            self._open[node.id] = self.target.node(node.host, node.port)
        return self._open[node.id]

    def close(self) -> None:
        for r in self._open.values():
            r.close()
        self._open.clear()


def _setslots(r: redis.Redis, slots: Sequence[int], *state: str) -> list[object]:
    """``CLUSTER SETSLOT <slot> <state...>`` for every slot in one round trip (and, on the node,
    one cluster-config save for the lot instead of one per slot)."""
    pipe = r.pipeline(transaction=False)
    for slot in slots:
        pipe.execute_command("CLUSTER SETSLOT", slot, *state)  # type: ignore[no-untyped-call]
    return list(pipe.execute(raise_on_error=False))


def _finalize(
    conns: Connections, topo: Topology, slots: Sequence[int], src: Node, dst: Node
) -> None:
    """Give ``slots`` to ``dst``: the destination first, then the source, then everyone else."""
    for node, must in ((dst, True), (src, True), *((m, False) for m in topo.masters)):
        if not must and node.id in (src.id, dst.id):
            continue
        try:
            errors = [
                e for e in _setslots(conns(node), slots, "NODE", dst.id) if isinstance(e, Exception)
            ]
        except redis.RedisError as e:
            errors = [e]
        if node.id == src.id and all("only with masters" in str(e) for e in errors):
            # Having learnt from the destination that its last slots left, the source has become
            # a replica of it (cluster-allow-replica-migration): the hand-over is done.
            errors = []
        if errors and must:
            raise OpsError(
                f"{node.address} refused to hand over slots to {dst.address}: {errors[0]}"
            )
        # Elsewhere gossip carries the new owner too; telling them only makes it quicker.


def move_slots(
    conns: Connections,
    topo: Topology,
    src: Node,
    dst: Node,
    slots: Sequence[int],
    *,
    batch: int = 100,
    pipeline: int = 10,
    timeout_ms: int = 10_000,
) -> dict[int, int]:
    """Move ``slots`` with their keys from ``src`` to ``dst``; keys moved per slot. Safe to call
    again after an interruption."""
    s, d = conns(src), conns(dst)
    refused = [e for e in _setslots(d, slots, "IMPORTING", src.id) if isinstance(e, Exception)]
    if refused:
        raise OpsError(f"{dst.address} refused to import from {src.address}: {refused[0]}")
    moved: dict[int, int] = {}
    for slot, answer in zip(slots, _setslots(s, slots, "MIGRATING", dst.id), strict=True):
        if isinstance(answer, Exception):
            if "not the owner" not in str(answer):
                raise OpsError(f"{src.address} refused to migrate slot {slot}: {answer}")
            # The source gave the slot up already (interrupted after SETSLOT NODE): just finish.
            moved[slot] = 0
            continue
        moved[slot] = 0
        while keys := s.execute_command("CLUSTER GETKEYSINSLOT", slot, batch * pipeline):  # type: ignore[no-untyped-call]
            _send_batches(conns.target, s, dst, list(keys), batch, timeout_ms)
            moved[slot] += len(keys)
    _finalize(conns, topo, slots, src, dst)
    return moved


def move_slot(target: Target, topo: Topology, move: Move, **kw: int) -> int:
    """Move one slot with its keys; returns how many keys went over."""
    conns = Connections(target)
    try:
        return move_slots(conns, topo, move.source, move.destination, [move.slot], **kw)[move.slot]
    finally:
        conns.close()


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


def _run(
    target: Target, topo: Topology, moves: Sequence[Move], progress: Progress | None, group: int
) -> int:
    """Run ``moves`` in groups of up to ``group`` slots sharing a source and a destination."""
    conns = Connections(target)
    total = 0
    try:
        i = 0
        while i < len(moves):
            first = moves[i]
            chunk = [first]
            while (
                i + len(chunk) < len(moves)
                and len(chunk) < group
                and moves[i + len(chunk)].source.id == first.source.id
                and moves[i + len(chunk)].destination.id == first.destination.id
            ):
                chunk.append(moves[i + len(chunk)])
            done = move_slots(conns, topo, first.source, first.destination, [m.slot for m in chunk])
            for move in chunk:
                total += done[move.slot]
                if progress:
                    progress(move, done[move.slot])
            i += len(chunk)
    finally:
        conns.close()
    return total


def finish_open_slots(target: Target, progress: Progress | None = None) -> list[Move]:
    """Complete every half-done slot move; returns the moves it completed."""
    topo = Topology.read(target)
    moves = open_slots(target, topo)
    _run(target, topo, moves, progress, 1)
    return moves


def execute(
    target: Target, moves: Sequence[Move], progress: Progress | None = None, *, group: int = 64
) -> int:
    """Run ``moves`` (after finishing any open slot), ``group`` slots at a time per source and
    destination; returns the keys moved."""
    finish_open_slots(target, progress)
    topo = Topology.read(target)
    todo = []
    for move in moves:
        owner = topo.owner(move.slot)
        if owner is not None and owner.id == move.destination.id:
            continue  # Done before an interruption.
        todo.append(move)
    return _run(target, topo, sorted(todo, key=lambda m: (m.source.id, m.slot)), progress, group)


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
