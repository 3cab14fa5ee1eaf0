"""Recovery rules: in-order delivery, gaps, bounded catch-up."""

from __future__ import annotations

import pytest

from gateway.domain.recovery import Cursor, Plan, Verdict, plan_recovery

pytestmark = pytest.mark.unit


def test_a_gap_within_the_bound_is_recovered_in_pages_of_at_most_100() -> None:
    plan = plan_recovery(5, 255, bound=300)
    assert plan == Plan(True, 5, 255)
    assert plan.pages() == [(5, 100), (105, 100), (205, 50)]


def test_a_gap_past_the_bound_is_not_recovered() -> None:
    plan = plan_recovery(5, 206, bound=200)
    assert not plan.recovered
    assert plan.pages() == []


def test_nothing_to_fetch_when_the_client_is_up_to_date() -> None:
    assert plan_recovery(9, 9).pages() == []


def test_live_messages_in_sequence_are_delivered_and_repeats_dropped() -> None:
    cursor: Cursor[str] = Cursor()
    assert cursor.live(7, "m7") is Verdict.DELIVER  # the first seen sets the start
    assert cursor.live(8, "m8") is Verdict.DELIVER
    assert cursor.live(8, "m8") is Verdict.DUPLICATE
    assert cursor.last == 8


def test_a_gap_holds_the_message_until_the_history_fills_it() -> None:
    cursor: Cursor[str] = Cursor(last=3)
    assert cursor.live(6, "m6") is Verdict.GAP
    assert cursor.live(7, "m7") is Verdict.HELD
    out = cursor.finish([(4, "m4"), (5, "m5"), (6, "m6")])
    assert out == ["m4", "m5", "m6", "m7"]
    assert cursor.last == 7 and not cursor.recovering


def test_resume_holds_live_messages_and_merges_without_repeats() -> None:
    cursor: Cursor[str] = Cursor()
    cursor.begin(10)
    assert cursor.live(13, "m13") is Verdict.HELD
    assert cursor.finish([(11, "m11"), (12, "m12"), (13, "m13")]) == ["m11", "m12", "m13"]


def test_a_hole_in_the_held_messages_keeps_recovering() -> None:
    cursor: Cursor[str] = Cursor(last=1)
    cursor.live(3, "m3")
    cursor.live(5, "m5")
    assert cursor.finish([(2, "m2"), (3, "m3")]) == ["m2", "m3"]
    assert cursor.gap_remains() and cursor.recovering
    assert cursor.abandon() == ["m5"]
    assert cursor.last == 5 and not cursor.recovering


def test_past_the_bound_the_cursor_jumps_to_the_head_and_releases_newer_held() -> None:
    cursor: Cursor[str] = Cursor()
    cursor.begin(5)
    cursor.live(500, "m500")
    cursor.live(501, "m501")
    assert cursor.finish([], head=499) == ["m500", "m501"]
    assert cursor.last == 501
