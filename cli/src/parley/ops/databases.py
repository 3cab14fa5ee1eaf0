"""Each service's database in a backup: SQLite through its backup API, PostgreSQL with pg_dump."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from parley.ops.target import OpsError


@dataclass(frozen=True)
class Database:
    """``name=url`` from the command line (``chat=sqlite:///var/parley/chat.db``)."""

    name: str
    url: str

    @classmethod
    def parse(cls, text: str) -> Database:
        name, sep, url = text.partition("=")
        if not sep or not name.isidentifier() or not url:
            raise OpsError(
                f"--database looks like chat=sqlite:///path or chat=postgresql://...: {text!r}"
            )
        kind = urlsplit(url).scheme.split("+", 1)[0]
        if kind not in ("sqlite", "postgresql", "postgres"):
            raise OpsError(f"--database {name}: only sqlite and postgresql URLs, got {kind!r}")
        return cls(name, url)

    @property
    def kind(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"

    @property
    def sqlite_path(self) -> Path:
        return Path(self.url.split(":///", 1)[1].split("?", 1)[0])

    @property
    def libpq_url(self) -> str:
        """The URL pg_dump understands: no SQLAlchemy driver suffix."""
        parts = urlsplit(self.url)
        return urlunsplit(("postgresql", *parts[1:]))

    @property
    def redacted(self) -> str:
        parts = urlsplit(self.url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit((parts.scheme, netloc, *parts[2:]))
        return self.url

    @property
    def file_name(self) -> str:
        return f"{self.name}.sqlite" if self.kind == "sqlite" else f"{self.name}.pgdump"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise OpsError(f"{name} is not on the PATH (PostgreSQL client tools are needed)")
    return found


def dump(db: Database, dest: Path) -> None:
    """A consistent copy of ``db`` into ``dest`` (SQLite's online backup, or pg_dump -Fc)."""
    if db.kind == "sqlite":
        if not db.sqlite_path.is_file():
            raise OpsError(f"--database {db.name}: {db.sqlite_path} does not exist")
        with sqlite3.connect(db.sqlite_path) as source, sqlite3.connect(dest) as copy:
            source.backup(copy)
        return
    result = subprocess.run(
        [_tool("pg_dump"), "--format=custom", f"--file={dest}", f"--dbname={db.libpq_url}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise OpsError(f"pg_dump of {db.name} failed: {result.stderr.strip()}")


def load(db: Database, source: Path) -> None:
    """Replace ``db``'s contents with the copy in ``source`` (stop the service first)."""
    if db.kind == "sqlite":
        db.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(source) as copy, sqlite3.connect(db.sqlite_path) as live:
            copy.backup(live)
        return
    result = subprocess.run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            f"--dbname={db.libpq_url}",
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise OpsError(f"pg_restore of {db.name} failed: {result.stderr.strip()}")
