"""Profile rules: validation of every field, and what a change does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from user.domain.errors import InvalidInputError
from user.domain.profiles import ProfileChanges, apply_changes, new_profile, valid_search_prefix

pytestmark = pytest.mark.unit

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def test_a_change_is_validated_normalised_and_stamped() -> None:
    later = NOW + timedelta(minutes=1)
    changed = apply_changes(
        new_profile("u1", "alice", "Alice", now=NOW),
        ProfileChanges(display_name="  Al  ", time_zone="Europe/Paris", bio="line\nline"),
        now=later,
    )
    assert (changed.display_name, changed.time_zone, changed.updated_at) == (
        "Al",
        "Europe/Paris",
        later,
    )


def test_no_real_change_keeps_the_same_profile() -> None:
    profile = new_profile("u1", "alice", "Alice", now=NOW)
    assert apply_changes(profile, ProfileChanges(display_name="Alice"), now=NOW) is profile


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (ProfileChanges(display_name="   "), "display_name"),
        (ProfileChanges(display_name="x" * 65), "display_name"),
        (ProfileChanges(display_name="bad\u0007bell"), "display_name"),
        (ProfileChanges(avatar_url="ftp://host/a.png"), "avatar_url"),
        (ProfileChanges(avatar_url="https:///no-host"), "avatar_url"),
        (ProfileChanges(bio="b" * 501), "bio"),
        (ProfileChanges(time_zone="Mars/Olympus_Mons"), "time_zone"),
    ],
)
def test_invalid_fields_are_refused_by_name(changes: ProfileChanges, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        apply_changes(new_profile("u1", "alice", "Alice", now=NOW), changes, now=NOW)
    assert caught.value.field == field


def test_an_empty_avatar_url_removes_the_avatar() -> None:
    profile = apply_changes(
        new_profile("u1", "alice", "Alice", now=NOW),
        ProfileChanges(avatar_url="https://cdn.example/a.png"),
        now=NOW,
    )
    cleared = apply_changes(profile, ProfileChanges(avatar_url=""), now=NOW)
    assert profile.avatar_url == "https://cdn.example/a.png" and cleared.avatar_url is None


def test_a_registration_with_an_unusable_display_name_falls_back_to_the_username() -> None:
    assert new_profile("u1", "alice", "\u200b", now=NOW).display_name == "alice"


def test_search_prefixes_are_lower_cased() -> None:
    assert valid_search_prefix(" AlI ") == "ali"
