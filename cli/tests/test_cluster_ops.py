"""``parley cluster`` operations on a real cluster: join, reshard, resume, rebalance, fail over,
remove, memory, backup checks; and the pure parts (CLUSTER NODES parsing, plans, key families).

The disposable cluster (``PARLEY_TEST_SPARE_PORTS``) plus two nodes of this module's
(``PARLEY_TEST_CLI_OPS_NODE_PORTS``, 7127,7128) that join and leave it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot
from typer.testing import CliRunner

from parley.cluster import LocalCluster
from parley.main import app
from parley.ops.memory import family_of
from parley.ops.slots import plan_drain, plan_rebalance
from parley.ops.topology import SLOTS, Node, Topology, parse_nodes

pytestmark = [pytest.mark.integration]

NODES = """\
aaa 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-99 [100->-bbb] [200-<-bbb]
bbb 127.0.0.1:7002@17002 master - 0 0 2 connected 100-16383
ccc :7003@17003 slave aaa 0 0 1 connected
"""


def _node(node_id: str, slots: tuple[tuple[int, int], ...]) -> Node:
    return Node(node_id, "127.0.0.1", 7000, frozenset({"master"}), "", "connected", slots)


@pytest.mark.unit
def test_cluster_nodes_lines_give_slots_roles_and_open_slots() -> None:
    a, b, c = parse_nodes(NODES)
    assert a.slots == ((0, 99),) and a.migrating == {100: "bbb"} and a.importing == {200: "bbb"}
    assert b.slot_count == SLOTS - 100 and c.master_id == "aaa" and not c.is_master
    assert c.port == 7003  # a node that has met nobody yet does not know its own host


@pytest.mark.unit
def test_rebalance_gives_an_empty_master_its_share_and_drain_empties_a_master() -> None:
    topo = Topology((_node("a", ((0, 8191),)), _node("b", ((8192, 16383),)), _node("c", ())))
    moves = plan_rebalance(topo)
    assert len(moves) in (5461, 5462) and {m.destination.id for m in moves} == {"c"}
    drain = plan_drain(topo, topo.nodes[0])
    assert len(drain) == 8192 and {m.destination.id for m in drain} == {"b", "c"}


@pytest.mark.unit
def test_keys_group_into_families_by_prefix_with_tags_and_ids_blanked() -> None:
    assert family_of("chat:msg:{conv:42}:recent") == "chat:msg:{…}:recent"
    assert family_of("auth:session:{user:7}:0f1e2d3c4b5a6978") == "auth:session:{…}:*"
    assert family_of("chat:stream:{chat.events.3}") == "chat:stream:{…}"


def _extra_ports() -> tuple[int, int]:
    a, b = os.environ.get("PARLEY_TEST_CLI_OPS_NODE_PORTS", "7127,7128").split(",")[:2]
    return int(a), int(b)


@pytest.fixture
def grown(disposable_cluster: LocalCluster) -> Iterator[tuple[LocalCluster, LocalCluster]]:
    """The disposable cluster, up with 3000 keys, and two empty extra nodes running."""
    disposable_cluster.up()
    a, b = _extra_ports()
    extra = LocalCluster(disposable_cluster.root, (a, b, a, b, a, b))
    extra.reset()
    for port in (a, b):
        extra.start_node(port)
    with redis.RedisCluster(host="127.0.0.1", port=disposable_cluster.ports[0]) as r:
        pipe = r.pipeline()
        for i in range(3000):
            pipe.set(f"chat:msg:{{conv:{i}}}:x", str(i))
        pipe.execute()
    yield disposable_cluster, extra
    extra.reset()


def run(cluster: LocalCluster, *args: str, ok: bool = True, stdin: str | None = None) -> Any:
    result = CliRunner().invoke(
        app, ["cluster", *args, "--url", cluster.url(), "--json"], input=stdin
    )
    assert (result.exit_code == 0) == ok, result.output
    return json.loads(result.output.strip().splitlines()[-1]) if result.output.strip() else None


def all_keys_readable(cluster: LocalCluster) -> bool:
    with redis.RedisCluster(host="127.0.0.1", port=cluster.ports[0]) as r:
        pipe = r.pipeline()
        for i in range(3000):
            pipe.get(f"chat:msg:{{conv:{i}}}:x")
        return bool(pipe.execute() == [str(i).encode() for i in range(3000)])


def test_a_joined_master_takes_slots_with_their_keys_then_is_drained_and_removed(
    grown: tuple[LocalCluster, LocalCluster],
) -> None:
    cluster, extra = grown
    a, b = extra.ports[0], extra.ports[1]
    master = run(cluster, "add-node", f"127.0.0.1:{a}")
    replica = run(cluster, "add-node", f"127.0.0.1:{b}", "--replica-of", master["id"])
    assert replica["role"].startswith("replica of")
    moved = run(cluster, "reshard", "--to", master["id"], "--count", "600", "--yes")
    assert moved["slots"] == 600 and moved["keys"] > 0
    status = run(cluster, "status")
    assert (
        status["ok"] and next(n for n in status["nodes"] if n["id"] == master["id"])["slots"] == 600
    )
    assert all_keys_readable(cluster)
    promoted = run(cluster, "failover", master["id"], "--yes")
    assert promoted["promoted"] == replica["id"]
    removed = run(cluster, "remove-node", replica["id"], "--yes")
    assert set(removed["removed"]) == {master["id"], replica["id"]}
    status = run(cluster, "status")
    assert status["ok"] and len(status["nodes"]) == 6 and status["slots_covered"] == SLOTS
    assert all_keys_readable(cluster)


def test_an_interrupted_slot_move_is_finished_by_resume(
    grown: tuple[LocalCluster, LocalCluster],
) -> None:
    cluster, _ = grown
    status = run(cluster, "status")
    masters = [n for n in status["nodes"] if n["role"] == "master"]
    src, dst = masters[0], masters[1]
    slot = src["slot_ranges"][0][0]
    host, port = src["address"].rsplit(":", 1)
    dhost, dport = dst["address"].rsplit(":", 1)
    with redis.Redis(host=host, port=int(port)) as s, redis.Redis(host=dhost, port=int(dport)) as d:
        keys = s.execute_command("CLUSTER GETKEYSINSLOT", slot, 100)
        if not keys:  # give the slot keys so that half of them can move
            tag = next(f"k{i}" for i in range(1_000_000) if key_slot(f"k{i}".encode()) == slot)
            with redis.RedisCluster(host="127.0.0.1", port=cluster.ports[0]) as r:
                for i in range(10):
                    r.set(f"{{{tag}}}:{i}", i)
            keys = s.execute_command("CLUSTER GETKEYSINSLOT", slot, 100)
        # What an interrupted reshard leaves: the slot open on both sides, half its keys moved.
        d.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src["id"])
        s.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst["id"])
        half = keys[: len(keys) // 2]
        s.execute_command("MIGRATE", dhost, dport, "", 0, 5000, "KEYS", *half)
    assert not run(cluster, "status", ok=False)["ok"]
    assert run(cluster, "resume")["slots"] == [slot]
    status = run(cluster, "status")
    assert status["ok"], status["problems"]
    owner = next(n for n in status["nodes"] if any(a <= slot <= b for a, b in n["slot_ranges"]))
    assert owner["id"] == dst["id"]
    assert all_keys_readable(cluster)


def test_rebalance_memory_and_the_confirmation(grown: tuple[LocalCluster, LocalCluster]) -> None:
    cluster, extra = grown
    joined = run(cluster, "add-node", f"127.0.0.1:{extra.ports[0]}")
    refused = CliRunner().invoke(app, ["cluster", "rebalance", "--url", cluster.url()], input="n\n")
    assert refused.exit_code == 1 and "aborted" in refused.output
    assert run(cluster, "rebalance", "--yes")["slots"] == SLOTS // 4
    status = run(cluster, "status", ok=False)  # the new master has no replica: not ok
    assert next(n for n in status["nodes"] if n["id"] == joined["id"])["slots"] == SLOTS // 4
    assert all_keys_readable(cluster)
    memory = run(cluster, "memory", "--samples", "20")
    family = next(f for f in memory["families"] if f["family"] == "chat:msg:{…}:x")
    assert family["keys"] == 3000 and family["sampled"] > 0 and family["mean_bytes"] > 0


def test_a_backup_whose_file_changed_is_refused(
    grown: tuple[LocalCluster, LocalCluster], tmp_path: Path
) -> None:
    cluster, _ = grown
    folder = Path(run(cluster, "backup", str(tmp_path))["folder"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sum(f.get("keys", 0) for f in manifest["files"]) == 3000
    rdb = folder / manifest["files"][0]["path"]
    rdb.write_bytes(rdb.read_bytes() + b"x")
    refused = run(cluster, "restore", str(folder), "--yes", ok=False)
    assert "checksum" in refused["error"]
