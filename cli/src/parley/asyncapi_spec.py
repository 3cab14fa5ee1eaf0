"""Validate an AsyncAPI document against the official AsyncAPI 3.0.0 JSON Schema (vendored)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SPEC = Path(__file__).parent / "specs" / "asyncapi-3.0.0.json"


@cache
def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SPEC.read_text(encoding="utf-8")))


def asyncapi_errors(path: Path) -> list[str]:
    """Why the AsyncAPI document at ``path`` is not valid AsyncAPI 3.0.0 (empty when it is)."""
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        return [f"not JSON: {e}"]
    found = []
    for error in sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        found.append(f"not valid AsyncAPI 3.0.0 at {where}: {_short(error)}")
    return found


def _short(error: jsonschema.ValidationError) -> str:
    # A failed oneOf names the whole offending value; the deepest cause says what is wrong.
    best = jsonschema.exceptions.best_match([error])
    message = str(best.message)
    return message if len(message) <= 200 else message[:197] + "..."
