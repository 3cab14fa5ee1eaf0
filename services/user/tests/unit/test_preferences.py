"""Preference rules: defaults, validation, partial changes."""

from __future__ import annotations

import pytest

from user.domain.errors import InvalidInputError
from user.domain.preferences import DEFAULTS, PreferenceChanges, apply_preferences

pytestmark = pytest.mark.unit


def test_unchanged_fields_keep_their_values() -> None:
    changed = apply_preferences(DEFAULTS, PreferenceChanges(notifications="mentions"))
    assert changed.notifications == "mentions" and changed.theme == DEFAULTS.theme


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (PreferenceChanges(language="EN"), "language"),
        (PreferenceChanges(theme="neon"), "theme"),
        (PreferenceChanges(notifications="sometimes"), "notifications"),
    ],
)
def test_invalid_preferences_are_refused(changes: PreferenceChanges, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        apply_preferences(DEFAULTS, changes)
    assert caught.value.field == field
