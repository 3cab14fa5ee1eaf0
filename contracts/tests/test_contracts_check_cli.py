"""`parley contracts check|export` on the committed schemas and on edited temp copies."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest
from typer.testing import CliRunner

from contracts import registry
from contracts.base import Command, Id
from contracts.chat import PostMessage, PostResult
from parley.contracts_cmd import app

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "contracts" / "schemas"
DOCS = ROOT / "docs"
POST = "chat.post_message.v1"


class TightPostMessage(Command, frozen=True, kw_only=True):
    """PostMessage with a shorter body: a tightened constraint."""

    TYPE = "chat.post_message"
    STREAM = "chat.commands"
    KEY = "conversation_id"
    RESULT = PostResult

    sender_id: Id
    conversation_id: Id
    client_msg_id: Id
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    mentions: Annotated[list[Id], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)


class ExtendedPostMessage(PostMessage, frozen=True, kw_only=True):
    """PostMessage plus an optional field with a default: compatible."""

    silent: bool = False


def swap(monkeypatch: pytest.MonkeyPatch, replacement: type[Command]) -> None:
    """Make the code declare ``replacement`` instead of PostMessage."""
    messages = tuple(replacement if c is PostMessage else c for c in registry.MESSAGES)
    monkeypatch.setattr(registry, "MESSAGES", messages)


@pytest.fixture
def copy(tmp_path: Path) -> tuple[Path, Path]:
    schemas, docs = tmp_path / "schemas", tmp_path / "docs"
    shutil.copytree(SCHEMAS, schemas)
    docs.mkdir()
    shutil.copy(DOCS / "asyncapi.json", docs / "asyncapi.json")
    return schemas, docs


def run(command: str, dirs: tuple[Path, Path], *extra: str) -> Any:
    schemas, docs = dirs
    args = [command, "--schemas-dir", str(schemas), "--docs-dir", str(docs), *extra]
    return CliRunner().invoke(app, args)


def edit(path: Path, change: Any) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_the_committed_schemas_match_the_code() -> None:
    result = run("check", (SCHEMAS, DOCS))
    assert result.exit_code == 0, result.output
    assert "contracts check passed" in result.output


def test_a_tightened_constraint_in_code_fails_the_check_and_export_writes_nothing(
    copy: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    swap(monkeypatch, TightPostMessage)
    before = (copy[0] / f"{POST}.json").read_text()
    result = run("check", copy)
    assert result.exit_code == 1
    assert f"BREAKING {POST}: $.body: maxLength 4000 -> 100 (tightened)" in result.output
    assert "new major version" in result.output
    refused = run("export", copy)
    assert refused.exit_code == 1
    assert (copy[0] / f"{POST}.json").read_text() == before


def test_a_breaking_edit_to_a_temp_copy_of_the_committed_schema_is_caught(
    copy: tuple[Path, Path],
) -> None:
    def require_a_field_the_code_does_not_have(doc: dict[str, Any]) -> None:
        definition = doc["$defs"]["PostMessage"]
        definition["properties"]["thread_id"] = {"type": "string"}
        definition["required"].append("thread_id")

    for path in (copy[0] / f"{POST}.json", copy[0] / "history" / f"{POST}.json"):
        if path.parent.name == "history":
            edit(path, lambda d: require_a_field_the_code_does_not_have(d["revisions"][-1]))
        else:
            edit(path, require_a_field_the_code_does_not_have)
    result = run("check", copy)
    assert result.exit_code == 1
    assert f"{POST}: $.thread_id: field removed or renamed" in result.output


def test_the_check_is_transitive_over_every_kept_revision(copy: tuple[Path, Path]) -> None:
    def add_an_older_looser_revision(history: dict[str, Any]) -> None:
        older = json.loads(json.dumps(history["revisions"][0]))
        older["$defs"]["PostMessage"]["properties"]["body"]["maxLength"] = 8000
        history["revisions"].insert(0, older)

    edit(copy[0] / "history" / f"{POST}.json", add_an_older_looser_revision)
    result = run("check", copy)
    assert result.exit_code == 1
    assert f"{POST}: $.body: maxLength 8000 -> 4000 (tightened)" in result.output


def test_a_message_without_a_committed_schema_fails_and_says_what_to_run(
    copy: tuple[Path, Path],
) -> None:
    (copy[0] / f"{POST}.json").unlink()
    (copy[0] / "history" / f"{POST}.json").unlink()
    result = run("check", copy)
    assert result.exit_code == 1
    assert f"MISSING  {POST}" in result.output
    assert "uv run parley contracts export" in result.output


def test_a_removed_message_or_stream_is_breaking(copy: tuple[Path, Path]) -> None:
    shutil.copy(copy[0] / f"{POST}.json", copy[0] / "chat.retired_command.v1.json")
    edit(
        copy[0] / "registry.json",
        lambda d: d["streams"].update({"chat.archive": {"owner": "chat", "partitions": 4}}),
    )
    result = run("check", copy)
    assert result.exit_code == 1
    assert "chat.retired_command.v1: message removed" in result.output
    assert "registry: stream chat.archive removed" in result.output


def test_a_compatible_change_must_be_exported_and_then_passes(
    copy: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    swap(monkeypatch, ExtendedPostMessage)
    stale = run("check", copy)
    assert stale.exit_code == 1
    assert f"STALE    {POST}" in stale.output
    assert "BREAKING" not in stale.output
    exported = run("export", copy)
    assert exported.exit_code == 0, exported.output
    history = json.loads((copy[0] / "history" / f"{POST}.json").read_text())
    assert len(history["revisions"]) == 2
    assert run("check", copy).exit_code == 0


def test_export_is_deterministic(tmp_path: Path) -> None:
    first, second = (
        (tmp_path / "a" / "schemas", tmp_path / "a" / "docs"),
        (
            tmp_path / "b" / "schemas",
            tmp_path / "b" / "docs",
        ),
    )
    assert run("export", first).exit_code == 0
    assert run("export", second).exit_code == 0
    for path in sorted(first[0].rglob("*.json")):
        assert path.read_bytes() == (second[0] / path.relative_to(first[0])).read_bytes()
    again = run("export", first)
    assert "schemas up to date" in again.output
    assert (first[1] / "asyncapi.json").read_bytes() == (DOCS / "asyncapi.json").read_bytes()


def test_a_hand_edit_of_a_committed_schema_file_fails_the_check(copy: tuple[Path, Path]) -> None:
    def tighten_the_body(doc: dict[str, Any]) -> None:
        doc["$defs"]["PostMessage"]["properties"]["body"]["maxLength"] = 100

    edit(copy[0] / f"{POST}.json", tighten_the_body)
    result = run("check", copy)
    assert result.exit_code == 1
    assert f"EDITED   {POST}.json: differs from what" in result.output
    assert run("export", copy).exit_code == 0
    assert run("check", copy).exit_code == 0


def test_an_asyncapi_document_that_breaks_the_asyncapi_3_schema_fails_the_check(
    copy: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from parley import contracts_cmd

    def broken() -> dict[str, Any]:
        document = json.loads((DOCS / "asyncapi.json").read_text())
        first = next(iter(document["channels"]))
        document["channels"][first]["subscribe"] = {"message": {}}  # an AsyncAPI 2 shape
        return dict(document)

    monkeypatch.setattr(contracts_cmd, "asyncapi_document", broken)
    assert run("export", copy).exit_code == 0
    result = run("check", copy)
    assert result.exit_code == 1
    assert "asyncapi.json: not valid AsyncAPI 3.0.0 at channels/" in result.output


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Path]:
    """The committed schemas in a git repository of their own, one commit."""
    schemas, docs = tmp_path / "contracts" / "schemas", tmp_path / "docs"
    shutil.copytree(SCHEMAS, schemas)
    docs.mkdir()
    shutil.copy(DOCS / "asyncapi.json", docs / "asyncapi.json")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "schemas")
    return schemas, docs


def test_a_forced_export_that_rewrites_a_released_revision_fails_against_git_history(
    repo: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("check", repo, "--git-base", "HEAD").exit_code == 0
    swap(monkeypatch, TightPostMessage)
    assert run("export", repo, "--force").exit_code == 0
    git(repo[0].parents[1], "commit", "-qam", "forced")
    assert run("check", repo).exit_code == 0  # the files alone agree with the code now
    result = run("check", repo, "--git-base", "HEAD")
    assert result.exit_code == 1
    assert f"{POST}: a revision committed in HEAD or before is gone from its history" in (
        result.output
    )
    assert "maxLength 4000 -> 100 (tightened) (against HEAD or before)" in result.output


def test_a_compatible_export_keeps_the_git_history_check_green(
    repo: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    swap(monkeypatch, ExtendedPostMessage)
    assert run("export", repo).exit_code == 0
    git(repo[0].parents[1], "commit", "-qam", "compatible")
    result = run("check", repo, "--git-base", "HEAD")
    assert result.exit_code == 0, result.output


def test_an_unknown_git_base_is_a_clear_failure(repo: tuple[Path, Path]) -> None:
    result = run("check", repo, "--git-base", "no-such-revision")
    assert result.exit_code == 1
    assert "contracts check failed: git rev-list no-such-revision" in result.output
