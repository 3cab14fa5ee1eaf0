"""``parley contracts``: export the message schemas and check the code against the committed ones.

* ``export`` writes ``contracts/schemas/`` (one JSON Schema per message version, their history,
  the registry) and ``docs/asyncapi.json``; it refuses to write a breaking change.
* ``check`` exits 1 with a list of findings when the code breaks a committed schema, has a message
  with no committed schema, has changes that were not exported, or when a committed file differs
  from what ``export`` writes; ``docs/asyncapi.json`` must also be a valid AsyncAPI 3.0 document.
  With ``--git-base REV`` it also reads every revision committed at REV and its ancestors: none may
  be gone from the history, and the code must stay compatible with each. ``make test`` runs it
  with ``--git-base HEAD``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from contracts.asyncapi import asyncapi_document
from contracts.snapshots import EXPORT_HINT, check, check_released, dumps, export
from parley.asyncapi_spec import asyncapi_errors
from parley.schema_history import GitHistoryError, released_revisions
from shared.service.paths import repo_root

app = typer.Typer(help="Message schemas: export them, check compatibility.", no_args_is_help=True)

ASYNCAPI_FILE = "asyncapi.json"

SchemasDir = Annotated[
    Path | None,
    typer.Option("--schemas-dir", help="Committed schemas (default: contracts/schemas)."),
]
DocsDir = Annotated[
    Path | None,
    typer.Option("--docs-dir", help="Where asyncapi.json lives (default: docs)."),
]


def _dirs(schemas_dir: Path | None, docs_dir: Path | None) -> tuple[Path, Path]:
    root = repo_root()
    return schemas_dir or root / "contracts" / "schemas", docs_dir or root / "docs"


@app.command("export")
def export_cmd(
    schemas_dir: SchemasDir = None,
    docs_dir: DocsDir = None,
    *,
    force: Annotated[
        bool,
        typer.Option("--force", help="Write even breaking changes (unreleased messages only)."),
    ] = False,
) -> None:
    """Write the JSON Schema of every message version, the registry and the AsyncAPI document."""
    schemas, docs = _dirs(schemas_dir, docs_dir)
    schemas.mkdir(parents=True, exist_ok=True)
    report, written = export(schemas, force=force)
    if report.breaking and not force:
        for line in report.lines():
            typer.echo(line, err=True)
        typer.echo("Nothing written: the changes above are breaking.", err=True)
        raise typer.Exit(1)
    docs.mkdir(parents=True, exist_ok=True)
    asyncapi = docs / ASYNCAPI_FILE
    text = dumps(asyncapi_document())
    if not asyncapi.is_file() or asyncapi.read_text(encoding="utf-8") != text:
        asyncapi.write_text(text, encoding="utf-8")
        written.append(asyncapi)
    for warning in report.warnings:
        typer.echo(f"warning  {warning}")
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"{len(written)} file(s) written" if written else "schemas up to date")


GitBase = Annotated[
    str | None,
    typer.Option(
        "--git-base",
        help="Also check against every schema revision committed at this git revision and its "
        "ancestors (CI: HEAD, or the merge base of a branch).",
    ),
]


@app.command("check")
def check_cmd(
    schemas_dir: SchemasDir = None, docs_dir: DocsDir = None, git_base: GitBase = None
) -> None:
    """Fail (exit 1) on breaking, missing, unexported or hand-edited schemas."""
    schemas, docs = _dirs(schemas_dir, docs_dir)
    report = check(schemas)
    asyncapi = docs / ASYNCAPI_FILE
    if not asyncapi.is_file() or asyncapi.read_text(encoding="utf-8") != dumps(asyncapi_document()):
        report.stale.append(f"{ASYNCAPI_FILE} (docs)")
    if asyncapi.is_file():
        report.breaking += [f"{ASYNCAPI_FILE}: {error}" for error in asyncapi_errors(asyncapi)]
    if git_base is not None:
        try:
            released = released_revisions(schemas, git_base)
        except GitHistoryError as e:
            typer.echo(f"contracts check failed: {e}", err=True)
            raise typer.Exit(1) from e
        report.breaking += check_released(schemas, released, where=f"{git_base} or before")
    for line in report.lines():
        typer.echo(line, err=not report.ok)
    if not report.ok:
        typer.echo(f"contracts check failed; fix breaking changes, then `{EXPORT_HINT}`.", err=True)
        raise typer.Exit(1)
    typer.echo("contracts check passed")
