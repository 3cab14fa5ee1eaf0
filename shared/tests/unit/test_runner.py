"""The service runner freezes what start-up built, so full collections skip it."""

from __future__ import annotations

import gc

import pytest

from shared.service.runner import freeze_startup_objects

pytestmark = pytest.mark.unit


def test_objects_alive_at_start_up_leave_the_collectors_generations() -> None:
    built_at_start = [object()]
    try:
        frozen = freeze_startup_objects()
        assert frozen == gc.get_freeze_count() > 0
        assert not any(o is built_at_start for o in gc.get_objects())
        made_later = [object()]
        assert any(o is made_later for o in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(o is built_at_start for o in gc.get_objects())
