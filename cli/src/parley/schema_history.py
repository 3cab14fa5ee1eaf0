"""Every schema revision committed in git's past: what ``parley contracts check --git-base`` keeps.

History files (``contracts/schemas/history/<stem>.json``) are append-only once committed. Reading
each committed version of them, at a revision and all its ancestors, shows a revision that a later
``export --force`` or a hand edit took out.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any


class GitHistoryError(RuntimeError):
    """git could not list or read the committed history files."""


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], input=stdin, capture_output=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        reason = detail.decode(errors="replace").strip() or str(e)
        raise GitHistoryError(f"git {' '.join(args)}: {reason}") from e
    return done.stdout


def released_revisions(schemas_dir: Path, base: str) -> dict[str, list[dict[str, Any]]]:
    """Stem -> every distinct revision found in the history files at ``base`` and its ancestors,
    in the git repository that holds ``schemas_dir``."""
    root = Path(_git(schemas_dir, "rev-parse", "--show-toplevel").decode().strip())
    history_dir = (schemas_dir / "history").resolve().relative_to(root.resolve()).as_posix()
    commits = _git(root, "rev-list", base, "--", history_dir).decode().split()
    objects: dict[str, str] = {}  # blob id -> stem
    for commit in commits:
        listing = _git(root, "ls-tree", "-r", commit, "--", f"{history_dir}/").decode()
        for line in listing.splitlines():
            meta, path = line.split("\t", 1)
            if path.endswith(".json"):
                objects[meta.split()[2]] = Path(path).stem
    if not objects:
        return {}
    batch = _git(root, "cat-file", "--batch", stdin="\n".join(objects).encode() + b"\n")
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for blob, body in _blobs(batch):
        for revision in json.loads(body)["revisions"]:
            key = json.dumps(revision, sort_keys=True)
            found.setdefault(objects[blob], {})[key] = revision
    return {stem: list(revisions.values()) for stem, revisions in found.items()}


def _blobs(batch: bytes) -> list[tuple[str, bytes]]:
    """Parse ``git cat-file --batch`` output: ``<id> <type> <size>\\n<content>\\n`` each."""
    out: list[tuple[str, bytes]] = []
    at = 0
    while at < len(batch):
        end = batch.index(b"\n", at)
        blob, _kind, size = batch[at:end].decode().split()
        start = end + 1
        out.append((blob, batch[start : start + int(size)]))
        at = start + int(size) + 1
    return out
