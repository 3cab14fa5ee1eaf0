"""The cluster as its nodes describe it: who serves which slots, replicas, open slots, health."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from parley.ops.target import OpsError, Target, split_address

SLOTS = 16384
_OPEN = re.compile(r"^\[(\d+)-([<>])-([0-9a-f]+)\]$")


@dataclass(frozen=True)
class Node:
    """One line of CLUSTER NODES."""

    id: str
    host: str
    port: int
    flags: frozenset[str]
    master_id: str
    link: str
    slots: tuple[tuple[int, int], ...] = ()
    migrating: dict[int, str] = field(default_factory=dict)  # slot -> destination id
    importing: dict[int, str] = field(default_factory=dict)  # slot -> source id

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        return "fail" in self.flags or "noaddr" in self.flags

    @property
    def slot_count(self) -> int:
        return sum(b - a + 1 for a, b in self.slots)

    def slot_list(self) -> list[int]:
        return [s for a, b in self.slots for s in range(a, b + 1)]


def parse_nodes(text: str) -> list[Node]:
    """Parse CLUSTER NODES output (open-slot markers appear only on the node's own line)."""
    nodes = []
    for raw in text.strip().splitlines():
        parts = raw.split()
        if len(parts) < 8:
            continue
        # ``host:port@bus[,hostname]``; a node that has met nobody yet may not know its host.
        host, _, port_text = parts[1].split("@", 1)[0].rpartition(":")
        port = int(port_text) if port_text.isdigit() else 0
        host = host.strip("[]")
        slots: list[tuple[int, int]] = []
        migrating: dict[int, str] = {}
        importing: dict[int, str] = {}
        for item in parts[8:]:
            opened = _OPEN.match(item)
            if opened:
                slot, arrow, other = int(opened[1]), opened[2], opened[3]
                (migrating if arrow == ">" else importing)[slot] = other
            elif "-" in item:
                a, b = item.split("-", 1)
                slots.append((int(a), int(b)))
            else:
                slots.append((int(item), int(item)))
        nodes.append(
            Node(
                id=parts[0],
                host=host or "127.0.0.1",
                port=port,
                flags=frozenset(parts[2].split(",")),
                master_id="" if parts[3] == "-" else parts[3],
                link=parts[7],
                slots=tuple(slots),
                migrating=migrating,
                importing=importing,
            )
        )
    return nodes


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def cluster_nodes(target: Target, host: str, port: int) -> list[Node]:
    """CLUSTER NODES as seen from the node at ``host:port``."""
    try:
        with target.node(host, port) as r:
            return parse_nodes(_text(r.execute_command("CLUSTER NODES")))
    except redis.RedisError as e:
        raise OpsError(f"node {host}:{port} did not answer CLUSTER NODES: {e}") from e


def myself(target: Target, node: Node) -> Node:
    """The node's own line: the only one that shows its open (migrating/importing) slots."""
    for line in cluster_nodes(target, node.host, node.port):
        if "myself" in line.flags:
            return line
    raise OpsError(f"node {node.address} does not list itself")


@dataclass(frozen=True)
class Topology:
    """All nodes of the cluster, from the seed's view (own lines re-read where it matters)."""

    nodes: tuple[Node, ...]

    @classmethod
    def read(cls, target: Target) -> Topology:
        host, port = target.seed
        seen = cluster_nodes(target, host, port)
        # The seed's own line carries its host as it announces it; keep the address we reached.
        fixed = [
            Node(**{**n.__dict__, "host": host, "port": port}) if "myself" in n.flags else n
            for n in seen
        ]
        return cls(tuple(fixed))

    @property
    def masters(self) -> list[Node]:
        return [n for n in self.nodes if n.is_master and not n.failed]

    @property
    def serving(self) -> list[Node]:
        """Masters that own slots."""
        return [n for n in self.masters if n.slots]

    def replicas_of(self, master_id: str) -> list[Node]:
        return [n for n in self.nodes if not n.is_master and n.master_id == master_id]

    def find(self, ref: str) -> Node:
        """A node by id (or a unique id prefix of 8+ characters) or ``host:port``."""
        # A replacement node may take a failed one's address: the live one is meant.
        ordered = sorted(self.nodes, key=lambda n: n.failed)
        for n in ordered:
            if ref == n.id or ref == n.address:
                return n
        matches = [n for n in self.nodes if len(ref) >= 8 and n.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if ":" in ref:
            host, port = split_address(ref)
            for n in ordered:
                if n.port == port and (n.host == host or host in ("localhost", "127.0.0.1")):
                    return n
        raise OpsError(f"no node {ref!r} in the cluster")

    def owner(self, slot: int) -> Node | None:
        for n in self.masters:
            if any(a <= slot <= b for a, b in n.slots):
                return n
        return None

    def covered(self) -> int:
        return sum(n.slot_count for n in self.masters)


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.1) -> None:
    """Poll ``check`` until it holds, else an OpsError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OpsError):
            pass  # A node mid-change may refuse for a moment; keep polling until the deadline.
        if time.monotonic() >= deadline:
            raise OpsError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def ranges(slots: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted slots as inclusive ranges."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(slots)):
        if out and out[-1][1] == s - 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def parse_slots(text: str) -> list[int]:
    """``0-99,200,300-310`` into a list of slots; a clear error for anything else."""
    slots: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            a, _, b = part.partition("-")
            first, last = int(a), int(b or a)
        except ValueError as e:
            raise OpsError(f"slots look like 0-99,200: got {part!r}") from e
        if not 0 <= first <= last < SLOTS:
            raise OpsError(f"slot range {part!r} outside 0-{SLOTS - 1}")
        slots.extend(range(first, last + 1))
    return sorted(set(slots))
