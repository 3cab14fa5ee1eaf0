"""The committed schemas (``contracts/schemas/``): export them, and check the code against them.

Layout, all JSON with sorted keys and a trailing newline so exports are deterministic::

    <type>.v<major>.json          latest schema of that message version (for humans and tools)
    history/<type>.v<major>.json  {"revisions": [...]}: every schema ever exported for it
    registry.json                 streams, groups, channels and the message index

"Transitive" compatibility: the code is compared with *every* revision in the history, not only
the latest, so two compatible-looking steps cannot add up to a breaking one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.compat import compare_schemas
from contracts.schema_docs import REGISTRY_STEM, message_schemas, registry_document

__all__ = ["CheckReport", "check", "check_released", "dumps", "export"]

EXPORT_HINT = "uv run parley contracts export"


def dumps(document: Any) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass
class CheckReport:
    """Outcome of a check. ``ok`` when nothing is breaking, missing or stale."""

    breaking: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether CI may pass."""
        return not (self.breaking or self.missing or self.stale or self.edited)

    def lines(self) -> list[str]:
        """A readable report, one finding per line, breaking changes first."""
        out = [f"BREAKING {line}" for line in self.breaking]
        out += [f"MISSING  {s}: no committed schema; run `{EXPORT_HINT}`" for s in self.missing]
        out += [f"STALE    {s}: change not exported yet; run `{EXPORT_HINT}`" for s in self.stale]
        out += [
            f"EDITED   {s}: differs from what `{EXPORT_HINT}` writes (edited by hand?)"
            for s in self.edited
        ]
        out += [f"warning  {line}" for line in self.warnings]
        if self.breaking:
            out.append(
                "Breaking changes need a new major version: declare a new class with VERSION+1 "
                "beside the old one (keep the old one registered), then export."
            )
        return out


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _revisions(schemas_dir: Path, stem: str) -> list[dict[str, Any]]:
    history = schemas_dir / "history" / f"{stem}.json"
    if history.is_file():
        return list(_load(history)["revisions"])
    latest = schemas_dir / f"{stem}.json"
    return [_load(latest)] if latest.is_file() else []


def _committed_stems(schemas_dir: Path) -> set[str]:
    if not schemas_dir.is_dir():
        return set()
    return {p.stem for p in schemas_dir.glob("*.json") if p.stem != REGISTRY_STEM}


def _compare_message(stem: str, revisions: list[dict[str, Any]], code: dict[str, Any]) -> Any:
    breaking: set[str] = set()
    warnings: set[str] = set()
    for revision in revisions:
        old_meta, new_meta = revision.get("x-parley", {}), code.get("x-parley", {})
        for word in ("kind", "stream", "channel", "key"):
            if old_meta.get(word) != new_meta.get(word):
                was, now = old_meta.get(word), new_meta.get(word)
                breaking.add(f"{stem}: {word} changed {was!r} -> {now!r}")
        for change in compare_schemas(revision, code):
            line = f"{stem}: {change.path}: {change.detail}"
            (breaking if change.breaking else warnings).add(line)
    return sorted(breaking), sorted(warnings)


def _compare_registry(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for name, spec in sorted(old.get("streams", {}).items()):
        now = new["streams"].get(name)
        if now is None:
            found.append(f"registry: stream {name} removed")
            continue
        for word in ("owner", "partitions", "key_template"):
            if spec.get(word) != now.get(word):
                found.append(f"registry: stream {name} {word} {spec.get(word)!r} -> {now[word]!r}")
    for family, spec in sorted(old.get("channels", {}).items()):
        now = new["channels"].get(family)
        if now is None:
            found.append(f"registry: channel family {family} removed")
        elif spec.get("template") != now.get("template"):
            found.append(f"registry: channel {family} template {spec['template']!r} changed")
    return found


def check(schemas_dir: Path) -> CheckReport:
    """Compare the code's schemas and registry with the committed ones."""
    report = CheckReport()
    code = message_schemas()
    for stem, doc in code.items():
        revisions = _revisions(schemas_dir, stem)
        if not revisions:
            report.missing.append(stem)
            continue
        breaking, warnings = _compare_message(stem, revisions, doc)
        report.breaking += breaking
        report.warnings += warnings
        if not breaking and dumps(revisions[-1]) != dumps(doc):
            report.stale.append(stem)
    for stem in sorted(_committed_stems(schemas_dir) - code.keys()):
        report.breaking.append(f"{stem}: message removed (a committed version must stay declared)")
    registry_file = schemas_dir / f"{REGISTRY_STEM}.json"
    if registry_file.is_file():
        report.breaking += _compare_registry(_load(registry_file), registry_document())
        if dumps(_load(registry_file)) != dumps(registry_document()):
            report.stale.append(REGISTRY_STEM)
    else:
        report.missing.append(REGISTRY_STEM)
    report.stale = sorted(set(report.stale))
    report.edited = _edited_files(schemas_dir, code, report)
    return report


def _edited_files(schemas_dir: Path, code: dict[str, Any], report: CheckReport) -> list[str]:
    """Committed files whose text is not what ``export`` would write for the code as it is.

    A schema whose code changed is already reported (breaking or stale); any other difference
    is an edit of the file itself, e.g. a tightened ``maxLength`` typed into the JSON.
    """
    reported = set(report.stale) | {line.split(": ", 1)[0] for line in report.breaking}
    edited: list[str] = []
    for stem, doc in code.items():
        if stem in reported:
            continue
        latest = schemas_dir / f"{stem}.json"
        if latest.is_file() and latest.read_text(encoding="utf-8") != dumps(doc):
            edited.append(latest.name)
        history = schemas_dir / "history" / f"{stem}.json"
        if history.is_file():
            text = history.read_text(encoding="utf-8")
            if text != dumps({"revisions": _revisions(schemas_dir, stem)}):
                edited.append(f"history/{history.name}")
    registry_file = schemas_dir / f"{REGISTRY_STEM}.json"
    if (
        REGISTRY_STEM not in reported
        and registry_file.is_file()
        and registry_file.read_text(encoding="utf-8") != dumps(registry_document())
    ):
        edited.append(registry_file.name)
    return sorted(edited)


def check_released(
    schemas_dir: Path, released: Mapping[str, Sequence[dict[str, Any]]], *, where: str
) -> list[str]:
    """Breaking findings against revisions that were committed before (``released``: stem ->
    revisions, e.g. every version of the history files in git's past, named by ``where``).

    History is append-only once a revision is released: each must still be in the committed
    history, and the code must stay compatible with it. This is what stops ``export --force``
    from quietly rewriting a released message.
    """
    code = message_schemas()
    found: set[str] = set()
    for stem, revisions in sorted(released.items()):
        kept = {dumps(r) for r in _revisions(schemas_dir, stem)}
        for revision in revisions:
            if dumps(revision) not in kept:
                found.add(f"{stem}: a revision committed in {where} is gone from its history")
        if stem not in code:
            continue  # already reported by check() as a removed message, when its file remains
        breaking, _ = _compare_message(stem, list(revisions), code[stem])
        found.update(f"{line} (against {where})" for line in breaking)
    return sorted(found)


def export(schemas_dir: Path, *, force: bool = False) -> tuple[CheckReport, list[Path]]:
    """Write every schema, its history and the registry; refuse when the change is breaking.

    Returns the check report made before writing and the files written. With breaking changes
    nothing is written unless ``force`` (meant for unreleased messages only), which restarts the
    history of each changed message at the new schema.
    """
    report = check(schemas_dir)
    if report.breaking and not force:
        return report, []
    written: list[Path] = []
    (schemas_dir / "history").mkdir(parents=True, exist_ok=True)
    for stem, doc in message_schemas().items():
        revisions = _revisions(schemas_dir, stem)
        if revisions and dumps(revisions[-1]) == dumps(doc):
            written += _write(schemas_dir / f"{stem}.json", doc)  # undoes a hand edit
            written += _write(schemas_dir / "history" / f"{stem}.json", {"revisions": revisions})
            continue
        broken = any(line.startswith(f"{stem}: ") for line in report.breaking)
        revisions = [doc] if broken else [*revisions, doc]
        written += _write(schemas_dir / f"{stem}.json", doc)
        written += _write(schemas_dir / "history" / f"{stem}.json", {"revisions": revisions})
    written += _write(schemas_dir / f"{REGISTRY_STEM}.json", registry_document())
    return report, written


def _write(path: Path, document: Any) -> list[Path]:
    text = dumps(document)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return []
    path.write_text(text, encoding="utf-8")
    return [path]
