"""Coalescing and delivery rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notification.domain.deciding import Decision, PostedMessage, Verdict
from notification.domain.delivery import backoff, channels_for
from notification.domain.notifications import coalesce, preview_of
from notification.domain.preferences import UserSettings

pytestmark = pytest.mark.unit

T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=60)


def message(seq: int, *, at: datetime) -> PostedMessage:
    return PostedMessage(
        message_id=f"m{seq}",
        conversation_id="c1",
        seq=seq,
        sender_id="alice",
        mentions=frozenset(),
        preview=f"body {seq}",
        at=at,
    )


def told(kind: str = "message") -> Decision:
    return Decision(user_id="bob", verdict=Verdict.NOTIFY, kind=kind)  # type: ignore[arg-type]


def test_messages_within_the_window_coalesce_into_one_notification() -> None:
    first, created = coalesce(None, told(), message(1, at=T0), window=WINDOW, new_id="n1")
    assert created
    current = first
    for seq in (2, 3):
        current, created = coalesce(
            current, told(), message(seq, at=T0 + timedelta(seconds=seq)), window=WINDOW, new_id="x"
        )
        assert not created
    assert (current.id, current.count, current.seq, current.preview) == (
        "n1",
        3,
        3,
        "3 new messages",
    )


def test_a_message_after_the_window_starts_a_new_notification() -> None:
    first, _ = coalesce(None, told(), message(1, at=T0), window=WINDOW, new_id="n1")
    later, created = coalesce(first, told(), message(2, at=T0 + WINDOW), window=WINDOW, new_id="n2")
    assert created and later.id == "n2" and later.count == 1


def test_a_read_notification_does_not_grow() -> None:
    first, _ = coalesce(None, told(), message(1, at=T0), window=WINDOW, new_id="n1")
    from dataclasses import replace

    _, created = coalesce(
        replace(first, read=True), told(), message(2, at=T0), window=WINDOW, new_id="n2"
    )
    assert created


def test_a_mention_stands_alone() -> None:
    first, _ = coalesce(None, told(), message(1, at=T0), window=WINDOW, new_id="n1")
    mention, created = coalesce(
        first, told("mention"), message(2, at=T0), window=WINDOW, new_id="n2"
    )
    assert created and mention.kind == "mention"


def test_quiet_hours_keep_only_the_in_app_channel() -> None:
    settings = UserSettings(webhook_url="https://example.test/hook")
    assert channels_for(Verdict.NOTIFY, settings) == ["in_app", "log", "webhook"]
    assert channels_for(Verdict.NOTIFY_QUIETLY, settings) == ["in_app"]
    assert channels_for(Verdict.SKIP_MUTED, settings) == []


def test_an_online_user_gets_only_the_in_app_channel() -> None:
    settings = UserSettings(webhook_url="https://example.test/hook")
    assert channels_for(Verdict.NOTIFY, settings, online=True) == ["in_app"]
    assert channels_for(Verdict.NOTIFY, settings, online=False) == ["in_app", "log", "webhook"]


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, base=0.5, cap=3.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_the_preview_is_the_first_line_bounded() -> None:
    assert preview_of("  hi there\nsecond line") == "hi there"
    assert len(preview_of("x" * 500)) == 200
