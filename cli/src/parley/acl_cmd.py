"""``parley acl``: write deploy/redis/users.acl from the contracts registry, or check it.

* ``export`` writes the file (:func:`parley.acl.render`); run it after changing the registry.
* ``check`` exits 1 when the committed file is not what ``export`` would write (``make
  contracts-check`` runs it), so a new stream, sender, group or channel cannot ship without its
  ACL rights, nor an edited right without its contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parley.acl import render
from shared.service.paths import repo_root

app = typer.Typer(help="Redis ACL users, generated from the contracts.", no_args_is_help=True)

AclFile = Annotated[
    Path | None,
    typer.Option("--file", help="The ACL template (default: deploy/redis/users.acl)."),
]


def _path(file: Path | None) -> Path:
    return file or repo_root() / "deploy" / "redis" / "users.acl"


@app.command("export")
def export_cmd(file: AclFile = None) -> None:
    """Write the ACL template from contracts.registry and the services' key prefixes."""
    path, text = _path(file), render()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        typer.echo(f"{path} up to date")
        return
    path.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {path}")


@app.command("check")
def check_cmd(file: AclFile = None) -> None:
    """Fail (exit 1) when the ACL template differs from what ``export`` would write."""
    path = _path(file)
    if not path.is_file() or path.read_text(encoding="utf-8") != render():
        typer.echo(f"{path} is not generated from the registry; run `parley acl export`.", err=True)
        raise typer.Exit(1)
    typer.echo("acl check passed")
