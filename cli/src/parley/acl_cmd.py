"""``parley acl``: write deploy/redis/users.acl (and the Terraform module's acl.tf.json) from the
contracts registry, or check them.

* ``export`` writes the files (:func:`parley.acl.render`, :func:`parley.acl.render_terraform`);
  run it after changing the registry.
* ``check`` exits 1 when a committed file is not what ``export`` would write (``make
  contracts-check`` runs it), so a new stream, sender, group or channel cannot ship without its
  ACL rights, nor an edited right without its contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parley.acl import render, render_terraform
from shared.service.paths import repo_root

app = typer.Typer(help="Redis ACL users, generated from the contracts.", no_args_is_help=True)

AclFile = Annotated[
    Path | None,
    typer.Option("--file", help="The ACL template (default: deploy/redis/users.acl)."),
]


TerraformFile = Annotated[
    Path | None,
    typer.Option("--terraform-file", help="Default: deploy/terraform/aws/acl.tf.json."),
]


def _outputs(file: Path | None, terraform_file: Path | None) -> list[tuple[Path, str]]:
    root = repo_root() / "deploy"
    return [
        (file or root / "redis" / "users.acl", render()),
        (terraform_file or root / "terraform" / "aws" / "acl.tf.json", render_terraform()),
    ]


@app.command("export")
def export_cmd(file: AclFile = None, terraform_file: TerraformFile = None) -> None:
    """Write the ACL template and the Terraform access strings from contracts.registry."""
    for path, text in _outputs(file, terraform_file):
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            typer.echo(f"{path} up to date")
            continue
        path.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {path}")


@app.command("check")
def check_cmd(file: AclFile = None, terraform_file: TerraformFile = None) -> None:
    """Fail (exit 1) when a generated ACL file differs from what ``export`` would write."""
    stale = [
        p
        for p, text in _outputs(file, terraform_file)
        if not p.is_file() or p.read_text(encoding="utf-8") != text
    ]
    for path in stale:
        typer.echo(f"{path} is not generated from the registry; run `parley acl export`.", err=True)
    if stale:
        raise typer.Exit(1)
    typer.echo("acl check passed")
