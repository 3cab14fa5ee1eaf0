"""Relationship rules."""

from __future__ import annotations

import pytest

from user.domain.errors import InvalidInputError
from user.domain.relationships import check_block, check_contact, presence_audience

pytestmark = pytest.mark.unit


def test_nobody_is_their_own_contact_or_blocks_themselves() -> None:
    with pytest.raises(InvalidInputError):
        check_contact("a", "a", current_count=0)
    with pytest.raises(InvalidInputError):
        check_block("a", "a")


def test_presence_is_hidden_from_blocked_watchers_and_told_once() -> None:
    assert presence_audience(["b", "c", "b", "d"], blocked=["c"]) == ["b", "d"]
