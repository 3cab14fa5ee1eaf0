"""Response-cache keys are scoped to the viewer; ETags follow the body; events name their tags."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import chat, notification, registry, user
from gateway.handlers.invalidation import INVALIDATING_EVENTS, tags_of
from gateway.handlers.responses import ROUTE_TTL, cache_key, etag_matches, etag_of

pytestmark = pytest.mark.unit


def test_two_viewers_never_share_a_cache_key() -> None:
    assert cache_key("user", "alice", "/api/v1/users/u1", "") != cache_key(
        "user", "bob", "/api/v1/users/u1", ""
    )


def test_query_parameter_order_does_not_change_the_key() -> None:
    assert cache_key("users", "a", "/p", "ids=1&limit=2") == cache_key(
        "users", "a", "/p", "limit=2&ids=1"
    )


def test_keys_hold_no_client_text() -> None:
    key = cache_key("user", "{evil}", "/api/v1/users/{x}", "a={b}")
    assert "{" not in key and "}" not in key and len(key) == 40


def test_the_etag_changes_with_the_body_only() -> None:
    assert etag_of(b'{"a":1}') == etag_of(b'{"a":1}')
    assert etag_of(b'{"a":1}') != etag_of(b'{"a":2}')
    assert etag_of(b"x").startswith('"') and etag_of(b"x").endswith('"')


def test_if_none_match_accepts_lists_weak_tags_and_star() -> None:
    tag = etag_of(b"body")
    assert etag_matches(f'"other", {tag}', tag)
    assert etag_matches(f"W/{tag}", tag)
    assert etag_matches("*", tag)
    assert not etag_matches('"other"', tag)
    assert not etag_matches(None, tag)


def test_every_cached_route_has_a_ttl_rule() -> None:
    for route in ("me", "user", "users", "conversations", "messages", "notification-preferences"):
        assert ROUTE_TTL[route].ttl > 0


def test_a_profile_update_invalidates_that_profile() -> None:
    profile = user.Profile(user_id="u1", username="ann", display_name="Ann")
    assert tags_of(user.ProfileUpdated(user_id="u1", profile=profile)) == ["profile:u1"]


def test_a_new_conversation_invalidates_every_members_list() -> None:
    event = chat.ConversationCreated(
        conversation_id="c1", kind="group", creator_id="u1", member_ids=["u1", "u2", "u3"]
    )
    assert tags_of(event) == ["convs:u1", "convs:u2", "convs:u3"]


def test_a_posted_message_invalidates_its_conversation() -> None:
    message = chat.ChatMessage(
        id="m1",
        conversation_id="c1",
        seq=1,
        sender_id="u1",
        body="hi",
        client_msg_id="x",
        created_at=datetime.now(UTC),
    )
    assert tags_of(chat.MessagePosted(conversation_id="c1", message=message)) == ["conv:c1"]


def test_notifications_are_not_cached_so_their_events_invalidate_nothing() -> None:
    event = notification.NotificationsRead(user_id="u9", unread_count=0)
    assert tags_of(event) == []
    assert "notifications" not in ROUTE_TTL and "unread" not in ROUTE_TTL


def test_user_preferences_invalidate_the_notification_preferences_too() -> None:
    assert tags_of(user.PreferencesUpdated(user_id="u9", preferences=user.Preferences())) == [
        "prefs:u9",
        "nprefs:u9",
    ]


def test_every_consumed_event_class_is_an_event_with_a_stream() -> None:
    assert all(cls.STREAM.endswith(".events") for cls in INVALIDATING_EVENTS)


def test_the_cache_group_reads_every_stream_of_the_invalidating_events() -> None:
    group = registry.group("gateway.cache")
    assert not group.per_instance
    assert {cls.STREAM for cls in INVALIDATING_EVENTS} <= set(group.streams)
