"""The tables the ``parley`` command prints, as rich tables (plain text when not on a terminal).

One function per table builds it from the data its command gathered; :func:`show` prints it.
Commands whose output is for machines (``--json``, one JSON object per line) print no table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from parley.cluster import ClusterStatus


def show(table: Table) -> None:
    """Print ``table`` on standard output (read when printing: test runners swap it)."""
    Console(soft_wrap=False).print(table)


def _table(*columns: str, right: Iterable[str] = ()) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    aligned = set(right)
    for column in columns:
        table.add_column(column, justify="right" if column in aligned else "left", no_wrap=True)
    return table


def streams_table(rows: Iterable[Mapping[str, Any]]) -> Table:
    """``parley events streams``: partitions, length, dead letters and each group's lag/pending."""
    table = _table(
        "stream", "parts", "length", "dlq", "groups (lag/pending)", right=("parts", "length", "dlq")
    )
    table.columns[-1].no_wrap = False
    for row in rows:
        groups = ", ".join(f"{g} {v['lag']}/{v['pending']}" for g, v in row["groups"].items())
        dlq = str(row["dead_letters"])
        table.add_row(
            row["stream"],
            str(row["partitions"]),
            str(row["length"]),
            f"[red]{dlq}[/red]" if row["dead_letters"] else dlq,
            groups or "-",
        )
    return table


def cluster_table(status: ClusterStatus) -> Table:
    """``parley cluster status``: one row per node."""
    table = _table("port", "node", "role", "slots", "health")
    for n in status.nodes:
        if not n.running:
            table.add_row(str(n.port), "-", "-", "-", "[red]down[/red]")
            continue
        slots = ",".join(f"{a}-{b}" for a, b in n.slots) or "-"
        healthy = n.cluster_state == "ok" and not n.error
        health = "[green]ok[/green]" if healthy else f"[red]{n.error or n.cluster_state}[/red]"
        role = f"replica of {n.master_id[:8]}" if n.role == "replica" else n.role
        table.add_row(str(n.port), n.node_id[:8], role, slots, health)
    return table


def fleet_table(rows: Iterable[tuple[str, str, str]]) -> Table:
    """``parley up``: each service's URL and what listens there (name, URL, role)."""
    table = _table("service", "url", "serves")
    for name, url, role in rows:
        table.add_row(name, url, role)
    return table
