"""The tables the CLI prints: rich tables whose cells carry what the old columns did."""

from __future__ import annotations

import pytest
from rich.console import Console
from rich.table import Table

from parley.cluster import ClusterStatus, NodeStatus
from parley.tables import cluster_table, fleet_table, streams_table

pytestmark = pytest.mark.unit


def render(table: Table) -> list[str]:
    console = Console(width=200, record=True, color_system=None)
    with console.capture() as captured:
        console.print(table)
    # the header's rule is a line of box characters: not a row
    return [line.rstrip() for line in captured.get().splitlines() if line.strip(" ─-")]


def test_the_cluster_table_has_one_row_per_node_with_its_role_slots_and_health() -> None:
    status = ClusterStatus(
        nodes=(
            NodeStatus(7001, True, "aaaaaaaa1111", "master", "", ((0, 5460),), "ok"),
            NodeStatus(7002, True, "bbbbbbbb2222", "replica", "aaaaaaaa1111", cluster_state="ok"),
            NodeStatus(7003, False),
        ),
    )
    header, *rows = render(cluster_table(status))
    assert header.split() == ["port", "node", "role", "slots", "health"]
    assert rows[0].split() == ["7001", "aaaaaaaa", "master", "0-5460", "ok"]
    assert rows[1].split() == ["7002", "bbbbbbbb", "replica", "of", "aaaaaaaa", "-", "ok"]
    assert rows[2].split() == ["7003", "-", "-", "-", "down"]


def test_the_streams_table_lists_groups_with_lag_and_pending() -> None:
    rows = [
        {
            "stream": "chat.events",
            "partitions": 8,
            "length": 120,
            "dead_letters": 2,
            "groups": {"notification": {"lag": 3, "pending": 1}, "user": {"lag": 0, "pending": 0}},
        },
        {"stream": "auth.commands", "partitions": 4, "length": 0, "dead_letters": 0, "groups": {}},
    ]
    header, *lines = render(streams_table(rows))
    assert header.split()[:4] == ["stream", "parts", "length", "dlq"]
    first = ["chat.events", "8", "120", "2", "notification", "3/1,", "user", "0/0"]
    assert lines[0].split() == first
    assert lines[1].split() == ["auth.commands", "4", "0", "0", "-"]


def test_the_fleet_table_names_each_url_and_what_it_serves() -> None:
    table = fleet_table(
        [("chat", "http://127.0.0.1:8103", "admin"), ("gateway", "http://h:8080", "api")]
    )
    header, *lines = render(table)
    assert header.split() == ["service", "url", "serves"]
    assert [line.split() for line in lines] == [
        ["chat", "http://127.0.0.1:8103", "admin"],
        ["gateway", "http://h:8080", "api"],
    ]
