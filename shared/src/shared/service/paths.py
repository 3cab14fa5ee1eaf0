"""Where the local state of a checkout lives: `.parley/` beside the workspace file."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root(start: Path | None = None) -> Path:
    """The checkout's root: ``PARLEY_HOME``, else the nearest folder above with a workspace file."""
    explicit = os.environ.get("PARLEY_HOME")
    if explicit:
        return Path(explicit).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.uv.workspace]" in pyproject.read_text():
            return folder
    return here


def state_dir(start: Path | None = None) -> Path:
    """``.parley/`` in the checkout: cluster data, logs and SQLite files (git-ignored)."""
    return repo_root(start) / ".parley"
