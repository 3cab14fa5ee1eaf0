"""Who gets told: the pure decision rules."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from notification.domain.deciding import PostedMessage, Verdict, decide
from notification.domain.errors import InvalidPreferencesError
from notification.domain.preferences import Audience, ConversationSettings, UserSettings

pytestmark = pytest.mark.unit

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def posted(*, sender: str = "alice", mentions: frozenset[str] = frozenset()) -> PostedMessage:
    return PostedMessage(
        message_id="m1",
        conversation_id="c1",
        seq=7,
        sender_id=sender,
        mentions=mentions,
        preview="hello",
        at=NOW,
    )


def verdicts(
    message: PostedMessage,
    audiences: dict[str, Audience] | None = None,
    *,
    viewing: frozenset[str] = frozenset(),
    now: datetime = NOW,
) -> dict[str, Verdict]:
    decisions = decide(
        message,
        members=["alice", "bob", "carol"],
        audiences=audiences or {},
        viewing=viewing,
        now=now,
    )
    return {d.user_id: d.verdict for d in decisions}


def test_every_member_but_the_sender_is_told_by_default() -> None:
    assert verdicts(posted()) == {
        "alice": Verdict.SKIP_SENDER,
        "bob": Verdict.NOTIFY,
        "carol": Verdict.NOTIFY,
    }


def test_a_member_viewing_the_conversation_is_not_told() -> None:
    assert verdicts(posted(), viewing=frozenset({"bob"}))["bob"] is Verdict.SKIP_VIEWING


def test_a_blocked_sender_never_notifies_even_with_a_mention() -> None:
    audience = Audience(blocked=frozenset({"alice"}))
    result = verdicts(posted(mentions=frozenset({"bob"})), {"bob": audience})
    assert result["bob"] is Verdict.SKIP_BLOCKED


def test_a_muted_conversation_notifies_nobody_until_the_mute_ends() -> None:
    mute = {"c1": ConversationSettings(muted_until=NOW + timedelta(hours=1))}
    audience = Audience(conversations=mute)
    assert verdicts(posted(), {"bob": audience})["bob"] is Verdict.SKIP_MUTED
    later = NOW + timedelta(hours=1, seconds=1)
    assert verdicts(posted(), {"bob": audience}, now=later)["bob"] is Verdict.NOTIFY


def test_mentions_only_lets_a_mention_through_and_nothing_else() -> None:
    audience = Audience(settings=UserSettings(level="mentions"))
    assert verdicts(posted(), {"bob": audience})["bob"] is Verdict.SKIP_LEVEL
    mentioned = verdicts(posted(mentions=frozenset({"bob"})), {"bob": audience})
    assert mentioned["bob"] is Verdict.NOTIFY


def test_a_conversation_level_overrides_the_users_level() -> None:
    audience = Audience(
        settings=UserSettings(level="none"),
        conversations={"c1": ConversationSettings(level="all")},
    )
    assert verdicts(posted(), {"bob": audience})["bob"] is Verdict.NOTIFY


def test_do_not_disturb_follows_the_users_time_zone() -> None:
    # 12:00 UTC is 21:00 in Tokyo: inside 20:00-07:00 there, outside it in UTC.
    tokyo = UserSettings(dnd_start=time(20), dnd_end=time(7), time_zone="Asia/Tokyo")
    utc = UserSettings(dnd_start=time(20), dnd_end=time(7), time_zone="UTC")
    result = verdicts(posted(), {"bob": Audience(settings=tokyo), "carol": Audience(settings=utc)})
    assert result["bob"] is Verdict.NOTIFY_QUIETLY
    assert result["carol"] is Verdict.NOTIFY


def test_do_not_disturb_within_one_day() -> None:
    settings = UserSettings(dnd_start=time(11, 30), dnd_end=time(12, 30))
    assert settings.quiet_at(NOW)
    assert not settings.quiet_at(NOW + timedelta(minutes=30))


def test_half_a_do_not_disturb_span_is_refused() -> None:
    with pytest.raises(InvalidPreferencesError):
        UserSettings(dnd_start=time(22))
