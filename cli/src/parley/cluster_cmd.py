"""``parley cluster``: the local cluster (up, down, reset) and operations on any cluster
(status, add-node, reshard, rebalance, resume, remove-node, failover, fix, backup, restore, memory;
see :mod:`parley.cluster_ops_cmd`)."""

from __future__ import annotations

from typing import Annotated

import typer

from parley import cluster_ops_cmd
from parley.cluster import ClusterError, ClusterStatus, LocalCluster, parse_ports, ports_from_env
from parley.tables import cluster_table, show
from shared.service.paths import state_dir

app = typer.Typer(
    help="The local Redis Cluster (up, down, reset) and operations on any cluster (--url)."
)

PortsOption = Annotated[
    str | None,
    typer.Option(
        "--ports",
        help="Six ports, e.g. 7201-7206 (default: PARLEY_CLUSTER_PORTS or 7001-7006).",
        show_default=False,
    ),
]


def cluster_for(ports: str | None) -> LocalCluster:
    """The local cluster on ``ports`` (or PARLEY_CLUSTER_PORTS, or 7001-7006)."""
    try:
        chosen = parse_ports(ports) if ports else ports_from_env()
    except ClusterError as e:
        typer.echo(f"parley cluster: {e}", err=True)
        raise typer.Exit(2) from e
    return LocalCluster(state_dir(), chosen)


def print_status(status: ClusterStatus) -> None:
    show(cluster_table(status))
    typer.echo("cluster: ok" if status.ok else "cluster: NOT ok: " + "; ".join(status.problems))


@app.command("up")
def cluster_up(ports: PortsOption = None) -> None:
    """Start the six nodes and form (or repair) the cluster; idempotent."""
    cluster = cluster_for(ports)
    try:
        status = cluster.up()
    except ClusterError as e:
        typer.echo(f"parley cluster up: {e}", err=True)
        raise typer.Exit(1) from e
    print_status(status)
    typer.echo(f"url: {cluster.url()}")


@app.command("status")
def cluster_status(
    ports: PortsOption = None,
    url: cluster_ops_cmd.Url = None,
    user: cluster_ops_cmd.User = None,
    password_file: cluster_ops_cmd.PasswordFile = None,
    ca_file: cluster_ops_cmd.CaFile = None,
    as_json: cluster_ops_cmd.Json = False,
) -> None:
    """Each node's role, slots, replication lag and memory; exits 1 unless the cluster is ok and
    fully replicated. Without --url (and --json): the local cluster's nodes by port."""
    if url is not None or as_json:
        target = cluster_ops_cmd.target_of(url, user, password_file, ca_file, ports)
        cluster_ops_cmd.remote_status(target, as_json)
        return
    status = cluster_for(ports).status()
    print_status(status)
    if not status.ok:
        raise typer.Exit(1)


@app.command("down")
def cluster_down(ports: PortsOption = None) -> None:
    """Stop the nodes this tool started (data is kept)."""
    stopped = cluster_for(ports).down()
    typer.echo(f"stopped {len(stopped)} node(s)" + (f": {stopped}" if stopped else ""))


@app.command("reset")
def cluster_reset(ports: PortsOption = None) -> None:
    """Stop the nodes and delete their data."""
    cluster_for(ports).reset()
    typer.echo("cluster stopped and its data deleted")


cluster_ops_cmd.register(app)
