"""The ``parley`` command: the local cluster, the fleet, migrations, contracts, ACLs and events."""

from __future__ import annotations

import typer

from parley.acl_cmd import app as acl_app
from parley.cluster_cmd import app as cluster_app
from parley.contracts_cmd import app as contracts_app
from parley.events_cmd import app as events_app
from parley.fleet_cmd import migrate, up

app = typer.Typer(
    help="Parley: a chat backend on a Redis Cluster. Local cluster, fleet runner and tools.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(acl_app, name="acl")
app.add_typer(cluster_app, name="cluster")
app.add_typer(contracts_app, name="contracts")
app.add_typer(events_app, name="events")
app.command("up")(up)
app.command("migrate")(migrate)


def main() -> None:
    app()
