"""The compatibility rules, pinned by before/after schema pairs (one row per rule)."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.compat import compare_schemas

pytestmark = pytest.mark.unit

STR = {"type": "string"}
INT = {"type": "integer"}


def obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A one-definition document like msgspec exports: a $ref into $defs."""
    return {
        "$ref": "#/$defs/M",
        "$defs": {"M": {"type": "object", "properties": props, "required": list(required)}},
    }


def field(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return obj({"f": schema}, ("f",) if required else ())


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}], "default": None}


# (id, before, after, breaking?, words expected in a finding (or None when nothing is reported))
# fmt: off
CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool, str | None]] = [
    ("identical", field(STR), field(STR), False, None),
    ("optional field with default added", field(STR),
     obj({"f": STR, "g": {**INT, "default": 0}}, ("f",)), False, None),
    ("field removed", obj({"f": STR, "g": STR}, ("f", "g")), field(STR), True,
     "removed or renamed"),
    ("field renamed", field(STR), obj({"h": STR}, ("h",)), True, "removed or renamed"),
    ("required field added", field(STR), obj({"f": STR, "g": STR}, ("f", "g")), True,
     "added as required"),
    ("optional made required", field(STR, required=False), field(STR), True,
     "optional field made required"),
    ("required made optional", field(STR), field(STR, required=False), True,
     "required field made optional"),
    ("retyped string to integer", field(STR), field(INT), True, "'string' no longer accepted"),
    ("integer widened to number", field(INT), field({"type": "number"}), True,
     "'integer' no longer accepted"),
    ("made nullable", field(STR), field(nullable(STR), required=False), True,
     "'null' newly accepted"),
    ("null removed", field(nullable(STR), required=False), field({**STR, "default": None},
     required=False), True, "'null' no longer accepted"),
    ("maxLength lowered", field({**STR, "maxLength": 100}), field({**STR, "maxLength": 50}), True,
     "maxLength 100 -> 50 (tightened)"),
    ("maxLength added", field(STR), field({**STR, "maxLength": 50}), True, "maxLength 50 added"),
    ("maxLength raised is only a warning", field({**STR, "maxLength": 50}),
     field({**STR, "maxLength": 100}), False, "loosened"),
    ("minLength raised", field({**STR, "minLength": 1}), field({**STR, "minLength": 3}), True,
     "minLength 1 -> 3"),
    ("minimum raised", field({**INT, "minimum": 0}), field({**INT, "minimum": 1}), True,
     "minimum 0 -> 1"),
    ("minimum lowered is only a warning", field({**INT, "minimum": 1}),
     field({**INT, "minimum": 0}), False, "loosened"),
    ("maximum lowered", field({**INT, "maximum": 100}), field({**INT, "maximum": 10}), True,
     "maximum 100 -> 10"),
    ("exclusiveMinimum added", field(INT), field({**INT, "exclusiveMinimum": 0}), True,
     "exclusiveMinimum 0 added"),
    ("pattern added", field(STR), field({**STR, "pattern": "^[a-z]+$"}), True,
     "pattern absent -> '^[a-z]+$'"),
    ("pattern changed", field({**STR, "pattern": "^a"}), field({**STR, "pattern": "^b"}), True,
     "pattern '^a' -> '^b'"),
    ("format added", field(STR), field({**STR, "format": "date-time"}), True, "format absent"),
    ("enum narrowed", field({"enum": ["a", "b"]}), field({"enum": ["a"]}), True,
     "enum narrowed"),
    ("enum widened is only a warning", field({"enum": ["a"]}), field({"enum": ["a", "b"]}), False,
     "enum widened"),
    ("maxItems lowered", field({"type": "array", "items": STR, "maxItems": 10}),
     field({"type": "array", "items": STR, "maxItems": 5}), True, "maxItems 10 -> 5"),
    ("array item retyped", field({"type": "array", "items": STR}),
     field({"type": "array", "items": INT}), True, "$.f[]"),
    ("uniqueItems added", field({"type": "array", "items": STR}),
     field({"type": "array", "items": STR, "uniqueItems": True}), True, "uniqueItems"),
    ("default changed", field({**INT, "default": 1}, required=False),
     field({**INT, "default": 2}, required=False), True, "default changed 1 -> 2"),
    ("nested field removed", field(obj({"a": STR, "b": STR}, ("a", "b"))["$defs"]["M"]),
     field(obj({"a": STR}, ("a",))["$defs"]["M"]), True, "$.f.b: field removed"),
    ("dict value retyped", field({"type": "object", "additionalProperties": STR}),
     field({"type": "object", "additionalProperties": INT}), True, "$.f{}"),
    ("description and titles are free", field({**STR, "description": "old"}),
     field({**STR, "description": "new", "title": "T"}), False, None),
]
# fmt: on


def renamed_definition() -> dict[str, Any]:
    doc = obj({"f": {"$ref": "#/$defs/Inner"}}, ("f",))
    doc["$defs"]["Inner"] = {"type": "object", "properties": {"a": STR}, "required": ["a"]}
    return doc


def test_renaming_a_nested_struct_class_changes_nothing() -> None:
    before = renamed_definition()
    after = renamed_definition()
    after["$defs"]["Inner2"] = after["$defs"].pop("Inner")
    after["$defs"]["M"]["properties"]["f"] = {"$ref": "#/$defs/Inner2"}
    assert compare_schemas(before, after) == []


def test_a_recursive_type_is_compared_without_looping() -> None:
    doc = obj({"child": nullable({"$ref": "#/$defs/M"})})
    assert compare_schemas(doc, doc) == []


@pytest.mark.parametrize(
    ("before", "after", "breaking", "expected"),
    [pytest.param(b, a, br, ex, id=name) for name, b, a, br, ex in CASES],
)
def test_rule(
    before: dict[str, Any], after: dict[str, Any], breaking: bool, expected: str | None
) -> None:
    changes = compare_schemas(before, after)
    found_breaking = [c for c in changes if c.breaking]
    assert bool(found_breaking) is breaking, changes
    if expected is None:
        assert changes == []
    else:
        assert any(expected in str(c) for c in changes), changes


def test_the_table_pins_at_least_twenty_pairs() -> None:
    assert len(CASES) >= 20


def test_an_enum_behind_a_ref_is_compared_as_an_enum() -> None:
    before = obj({"code": {"$ref": "#/$defs/Code"}}, ("code",))
    before["$defs"]["Code"] = {"enum": ["a", "b"], "title": "Code"}
    after = obj({"code": {"$ref": "#/$defs/Code"}}, ("code",))
    after["$defs"]["Code"] = {"enum": ["a"], "title": "Code"}
    assert [str(c) for c in compare_schemas(before, after)] == [
        "BREAKING: $.code: enum narrowed: [\"'b'\"] removed"
    ]
