"""The import contracts pass on the tree, and a deliberate cross-service import fails them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LINT = str(Path(sys.executable).parent / "lint-imports")
SOURCES = ["cli/src", "contracts/src", "shared/src"] + [
    f"services/{s}/src" for s in ("auth", "user", "chat", "notification", "gateway")
]


def _copy_tree(tmp_path: Path) -> Path:
    for src in SOURCES:
        shutil.copytree(ROOT / src, tmp_path / src, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(tree / s) for s in SOURCES))
    return subprocess.run(
        [LINT, "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, check=False
    )


def test_the_tree_keeps_its_import_contracts(tmp_path: Path) -> None:
    result = _lint(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("where", "line", "broken"),
    [
        (
            "services/chat/src/chat/handlers/leak.py",
            "import auth.config\n",
            "no service imports another",
        ),
        ("shared/src/shared/leak.py", "import gateway.config\n", "import no service"),
        ("services/user/src/user/domain/leak.py", "import user.api\n", "api -> handlers -> domain"),
        ("services/chat/src/chat/domain/leak.py", "import sqlalchemy\n", "standard library only"),
    ],
)
def test_a_forbidden_import_fails_the_contracts(
    tmp_path: Path, where: str, line: str, broken: str
) -> None:
    tree = _copy_tree(tmp_path)
    (tree / where).write_text(line)
    result = _lint(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert broken in result.stdout
