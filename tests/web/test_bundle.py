"""The web client's committed bundle (``services/gateway/src/gateway/static/web``) is what
``web/``'s sources and lock file build: a fresh ``npm ci && npm run build`` in a copy of ``web/``
gives the same files, byte for byte (docs/web-client.md).

The fleet serves the committed bundle so that ``make up`` needs no Node; this check keeps it from
drifting from the sources. It needs ``npm`` (Debian's ``nodejs`` and ``npm``; ``.ci/run`` installs
them) and the npm registry, or a warm npm cache.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
BUNDLE = ROOT / "services" / "gateway" / "src" / "gateway" / "static" / "web"
SOURCES = ("package.json", "package-lock.json", "tsconfig.json", "vite.config.ts", "index.html")


def files(root: Path) -> dict[str, bytes]:
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in paths}


def test_the_committed_web_bundle_is_what_the_sources_and_lock_build(tmp_path: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("no npm (apt-get install nodejs npm); CI installs them")
    work = tmp_path / "web"
    work.mkdir()
    for name in SOURCES:
        shutil.copy2(WEB / name, work / name)
    shutil.copytree(WEB / "src", work / "src")
    out = tmp_path / "out"
    for step in (
        [npm, "ci", "--no-audit", "--no-fund"],
        [npm, "run", "build", "--", "--outDir", str(out), "--emptyOutDir"],
    ):
        done = subprocess.run(step, cwd=work, capture_output=True, text=True, timeout=600)
        output = done.stdout[-2000:] + done.stderr[-2000:]
        assert done.returncode == 0, f"{' '.join(step)}:\n{output}"
    built, committed = files(out), files(BUNDLE)
    assert sorted(built) == sorted(committed), "run `make web` and commit the bundle"
    stale = [name for name in built if built[name] != committed[name]]
    assert not stale, f"stale: {stale}; run `make web` and commit the bundle"
