"""Compatibility of two JSON Schemas of one message version: what changed, and is it breaking.

Policy: *full* compatibility within a major version (an old consumer reads what a new producer
writes, and a new consumer reads what an old producer wrote). Breaking:

* a field removed or renamed; a field added as required; a required field made optional (old
  consumers still require it) or an optional one made required;
* a field retyped (its set of JSON types changed, including adding or removing ``null``);
* a constraint tightened or added: maxLength/maxItems/maxProperties/maximum/exclusiveMaximum
  lowered, minLength/minItems/minProperties/minimum/exclusiveMinimum raised, pattern, format,
  multipleOf or uniqueItems added or changed, a const changed;
* an enum narrowed (a value removed);
* a default changed (producers omit fields equal to the default, so the reader's default decides
  the meaning).

Allowed: adding an optional field with a default; documentation (title/description) and the
names of nested definitions. Allowed but reported as a *warning*: loosening a constraint or
widening an enum (strict decoders of not-yet-upgraded consumers reject the new values, so deploy
consumers first).

Works on plain dicts (the exported schema documents); ``$ref`` is resolved within each document
so that renaming a nested Struct class changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Change", "compare_schemas"]

Schema = dict[str, Any]

# (keyword, direction): "upper" bounds break when lowered, "lower" bounds when raised.
_BOUNDS = (
    ("maxLength", "upper"),
    ("maxItems", "upper"),
    ("maxProperties", "upper"),
    ("maximum", "upper"),
    ("exclusiveMaximum", "upper"),
    ("minLength", "lower"),
    ("minItems", "lower"),
    ("minProperties", "lower"),
    ("minimum", "lower"),
    ("exclusiveMinimum", "lower"),
)
_EXACT = ("pattern", "format", "multipleOf", "const")
_MISSING = object()


@dataclass(frozen=True, order=True)
class Change:
    """One difference: where (``$.field.sub``), what, and whether it breaks compatibility."""

    path: str
    detail: str
    breaking: bool

    def __str__(self) -> str:
        tag = "BREAKING" if self.breaking else "warning"
        return f"{tag}: {self.path}: {self.detail}"


def compare_schemas(old: Schema, new: Schema) -> list[Change]:
    """Every difference between two schema documents that matters to compatibility, sorted."""
    walker = _Walker(old, new)
    walker.node(old, new, "$")
    return sorted(set(walker.changes))


class _Walker:
    def __init__(self, old_doc: Schema, new_doc: Schema) -> None:
        self.docs = (old_doc, new_doc)
        self.changes: list[Change] = []
        # Each pair of definitions is compared once: guards recursive types, and a definition used
        # by several fields reports its changes once (at the first path that reaches it).
        self.seen: set[tuple[str, str]] = set()

    def add(self, path: str, detail: str, *, breaking: bool = True) -> None:
        self.changes.append(Change(path, detail, breaking))

    def resolve(self, node: Schema, side: int) -> Schema:
        while "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            doc = self.docs[side]
            defs = doc.get("$defs") or doc.get("components", {}).get("schemas", {})
            node = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def node(self, old: Schema, new: Schema, path: str) -> None:
        if not self.first_visit(old, new):
            return
        old, new = self.resolve(old, 0), self.resolve(new, 1)
        self.default(old, new, path)
        old_branches, new_branches = _branches(old), _branches(new)
        for kind in sorted(old_branches.keys() - new_branches.keys()):
            self.add(path, f"type {kind!r} no longer accepted (retyped/narrowed)")
        for kind in sorted(new_branches.keys() - old_branches.keys()):
            self.add(path, f"type {kind!r} newly accepted (retyped/widened)")
        for kind in sorted(old_branches.keys() & new_branches.keys()):
            for o, n in zip(old_branches[kind], new_branches[kind], strict=False):
                if not self.first_visit(o, n):
                    continue
                o, n = self.resolve(o, 0), self.resolve(n, 1)
                if _kind(o) != _kind(n):
                    self.add(path, f"type {_kind(o)!r} -> {_kind(n)!r} (retyped)")
                else:
                    self.branch(_kind(o), o, n, path)

    def first_visit(self, old: Schema, new: Schema) -> bool:
        """False when this pair of definitions was compared already (see ``seen``)."""
        if "$ref" not in old or "$ref" not in new:
            return True
        key = (old["$ref"], new["$ref"])
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def default(self, old: Schema, new: Schema, path: str) -> None:
        before, after = old.get("default", _MISSING), new.get("default", _MISSING)
        if before is not _MISSING and after is not _MISSING and before != after:
            self.add(path, f"default changed {before!r} -> {after!r}")

    def branch(self, kind: str, old: Schema, new: Schema, path: str) -> None:
        self.bounds(old, new, path)
        if kind == "enum":
            removed = _values(old) - _values(new)
            added = _values(new) - _values(old)
            if removed:
                self.add(path, f"enum narrowed: {sorted(removed)} removed")
            if added:
                self.add(path, f"enum widened: {sorted(added)} added", breaking=False)
        elif kind == "array":
            self.array(old, new, path)
        elif kind == "object":
            self.object(old, new, path)

    def bounds(self, old: Schema, new: Schema, path: str) -> None:
        for word, direction in _BOUNDS:
            before, after = old.get(word), new.get(word)
            if before == after:
                continue
            if after is None:
                self.add(path, f"{word} {before} removed (loosened)", breaking=False)
            elif before is None:
                self.add(path, f"{word} {after} added (tightened)")
            elif (after < before) == (direction == "upper"):
                self.add(path, f"{word} {before} -> {after} (tightened)")
            else:
                self.add(path, f"{word} {before} -> {after} (loosened)", breaking=False)
        for word in _EXACT:
            before, after = old.get(word, _MISSING), new.get(word, _MISSING)
            if before == after:
                continue
            if after is _MISSING:
                self.add(path, f"{word} {before!r} removed (loosened)", breaking=False)
            else:
                was = "absent" if before is _MISSING else repr(before)
                self.add(path, f"{word} {was} -> {after!r} (tightened)")
        if new.get("uniqueItems") and not old.get("uniqueItems"):
            self.add(path, "uniqueItems added (tightened)")

    def array(self, old: Schema, new: Schema, path: str) -> None:
        old_prefix, new_prefix = old.get("prefixItems", []), new.get("prefixItems", [])
        if len(old_prefix) != len(new_prefix):
            self.add(path, f"tuple length {len(old_prefix)} -> {len(new_prefix)}")
        for i, (o, n) in enumerate(zip(old_prefix, new_prefix, strict=False)):
            self.node(o, n, f"{path}[{i}]")
        self.node(old.get("items", {}), new.get("items", {}), f"{path}[]")

    def object(self, old: Schema, new: Schema, path: str) -> None:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
        for name in sorted(old_props.keys() - new_props.keys()):
            self.add(f"{path}.{name}", "field removed or renamed")
        for name in sorted(new_props.keys() - old_props.keys()):
            if name in new_req:
                self.add(f"{path}.{name}", "field added as required")
        for name in sorted(old_props.keys() & new_props.keys()):
            sub = f"{path}.{name}"
            if name in new_req and name not in old_req:
                self.add(sub, "optional field made required")
            elif name in old_req and name not in new_req:
                self.add(sub, "required field made optional (old consumers require it)")
            self.node(old_props[name], new_props[name], sub)
        old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(old_extra, dict) and isinstance(new_extra, dict):
            self.node(old_extra, new_extra, f"{path}{{}}")
        elif old_extra != new_extra and (old_extra is not None or new_extra is not None):
            self.add(path, f"additionalProperties {old_extra!r} -> {new_extra!r}")


def _kind(node: Schema) -> str:
    if "$ref" in node:
        return "object"
    if "enum" in node:
        return "enum"
    if "const" in node:
        return "const"
    kind = node.get("type")
    if isinstance(kind, str):
        return kind
    return "any" if not any(k in node for k in ("properties", "items")) else "object"


def _branches(node: Schema) -> dict[str, list[Schema]]:
    """Split a node into its alternatives (anyOf/oneOf/type lists), grouped by JSON kind.

    Alternatives that are ``$ref``s stay unresolved here and are grouped as "object" (msgspec
    refs name Structs or Enums); the caller resolves them after its recursion guard and compares
    their real kinds.
    """
    alternatives: list[Schema] = []
    for union in ("anyOf", "oneOf"):
        for option in node.get(union, []):
            alternatives.extend(_split_types(option))
    if not alternatives:
        alternatives = _split_types(node)
    grouped: dict[str, list[Schema]] = {}
    for alternative in alternatives:
        grouped.setdefault(_kind(alternative), []).append(alternative)
    # "integer" is a subset of "number": no special case on purpose, changing it is a retype.
    return grouped


def _split_types(node: Schema) -> list[Schema]:
    kind = node.get("type")
    if isinstance(kind, list):
        return [{**node, "type": one} for one in kind]
    return [node]


def _values(node: Schema) -> set[str]:
    return {repr(v) for v in node.get("enum", [])}
