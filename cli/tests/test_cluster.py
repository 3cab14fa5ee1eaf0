"""The local cluster manager against real server processes."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from parley.cluster import (
    SLOTS,
    ClusterError,
    LocalCluster,
    find_server_binary,
    parse_ports,
    wait_until,
)
from parley.main import app

pytestmark = [pytest.mark.integration]


def _ports_arg(cluster: LocalCluster) -> str:
    return ",".join(str(p) for p in cluster.ports)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7001-7006", (7001, 7002, 7003, 7004, 7005, 7006)),
        ("7201,7203,7205,7207,7209,7211", (7201, 7203, 7205, 7207, 7209, 7211)),
    ],
)
def test_ports_are_parsed_from_a_range_or_a_list(text: str, expected: tuple[int, ...]) -> None:
    assert parse_ports(text) == expected


@pytest.mark.unit
@pytest.mark.parametrize(
    "text", ["7001-7005", "7001-7007", "a-b", "7001,7001,7002,7003,7004,7005", "60001-60006"]
)
def test_malformed_ports_are_refused_with_a_clear_error(text: str) -> None:
    with pytest.raises(ClusterError, match="port"):
        parse_ports(text)


def test_up_forms_three_replicated_masters_covering_every_slot(
    disposable_cluster: LocalCluster,
) -> None:
    status = disposable_cluster.up()
    assert status.ok, status.problems
    masters = [n for n in status.nodes if n.role == "master"]
    replicas = [n for n in status.nodes if n.role == "replica"]
    assert len(masters) == 3 and len(replicas) == 3
    assert sum(m.slot_count for m in masters) == SLOTS
    assert {r.master_id for r in replicas} == {m.node_id for m in masters}
    for port in disposable_cluster.ports:
        assert (disposable_cluster.node_dir(port) / "server.log").exists()
        with redis.Redis(port=port) as r:
            assert r.config_get("appendonly")["appendonly"] == "yes"

    again = disposable_cluster.up()
    assert again.ok
    assert [n.node_id for n in again.nodes] == [n.node_id for n in status.nodes]


@pytest.mark.slow
def test_a_killed_master_is_replaced_by_its_replica_and_up_brings_it_back(
    disposable_cluster: LocalCluster,
) -> None:
    status = disposable_cluster.up()
    victim = next(n for n in status.nodes if n.role == "master")
    heir = next(n for n in status.nodes if n.master_id == victim.node_id)
    disposable_cluster.stop_node(victim.port, sig=signal.SIGKILL)

    def heir_promoted() -> bool:
        node = disposable_cluster.node_status(heir.port)
        return node.role == "master" and node.slots == victim.slots and node.cluster_state == "ok"

    wait_until("the replica's promotion", heir_promoted, 30)
    assert not disposable_cluster.status().ok  # the dead node is reported

    healed = disposable_cluster.up()
    assert healed.ok, healed.problems
    returned = next(n for n in healed.nodes if n.port == victim.port)
    assert returned.role == "replica"
    assert returned.master_id == heir.node_id


def test_up_repairs_a_half_started_cluster(disposable_cluster: LocalCluster) -> None:
    # Three nodes running, never introduced to each other, no slots: a start that died midway.
    for port in disposable_cluster.ports[:3]:
        disposable_cluster.start_node(port)
    wait_until(
        "three nodes",
        lambda: all(
            disposable_cluster.node_status(p).running for p in disposable_cluster.ports[:3]
        ),
        30,
    )
    assert not disposable_cluster.status().ok

    status = disposable_cluster.up()
    assert status.ok, status.problems


def test_up_rebuilds_a_replica_whose_data_was_lost(disposable_cluster: LocalCluster) -> None:
    status = disposable_cluster.up()
    replica = next(n for n in status.nodes if n.role == "replica")
    disposable_cluster.stop_node(replica.port)
    for leftover in disposable_cluster.node_dir(replica.port).iterdir():
        if leftover.is_file():
            leftover.unlink()
        # AOF lives in a folder of its own on Redis 7.
        elif leftover.is_dir():
            for f in leftover.iterdir():
                f.unlink()
    # The other nodes still know the old node id; forget it so the fresh node can take its place.
    for n in status.nodes:
        if n.port != replica.port:
            with redis.Redis(port=n.port) as r:
                r.execute_command("CLUSTER FORGET", replica.node_id)

    healed = disposable_cluster.up()
    assert healed.ok, healed.problems
    assert next(n for n in healed.nodes if n.port == replica.port).role == "replica"


def test_down_stops_exactly_the_processes_it_started(
    disposable_cluster: LocalCluster, tmp_path: Path
) -> None:
    disposable_cluster.up()
    pids = [disposable_cluster.pid(p) for p in disposable_cluster.ports]
    assert all(pids)
    bystander_port = max(disposable_cluster.ports) + 50
    bystander = subprocess.Popen(
        [
            str(find_server_binary()),
            "--port",
            str(bystander_port),
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until("the bystander", lambda: _answers(bystander_port), 10)
        stopped = disposable_cluster.down()
        assert sorted(stopped) == sorted(disposable_cluster.ports)
        for pid in pids:
            assert pid is not None
            assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
        assert bystander.poll() is None and _answers(bystander_port)
        assert disposable_cluster.down() == []
    finally:
        bystander.terminate()
        bystander.wait(10)


def test_status_command_exits_non_zero_unless_the_cluster_is_ok(
    disposable_cluster: LocalCluster,
) -> None:
    runner = CliRunner()
    env = {"PARLEY_HOME": str(disposable_cluster.root.parent)}
    down = runner.invoke(
        app, ["cluster", "status", "--ports", _ports_arg(disposable_cluster)], env=env
    )
    assert down.exit_code == 1
    assert "down" in down.output

    disposable_cluster.up()
    ok = runner.invoke(
        app, ["cluster", "status", "--ports", _ports_arg(disposable_cluster)], env=env
    )
    assert ok.exit_code == 0, ok.output
    assert "cluster: ok" in ok.output
    assert ok.output.count("replica of") == 3


def _answers(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_connect_timeout=0.3) as r:
            return bool(r.ping())
    except redis.RedisError:
        return False


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
