"""The rules of conversations, messages and read markers (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chat.domain import conversations as conv_rules
from chat.domain import messages as msg_rules
from chat.domain import reading
from chat.domain.conversations import Conversation, Kind, Member, Role
from chat.domain.errors import (
    ConflictError,
    ForbiddenError,
    GroupFullError,
    InvalidError,
    NotFoundError,
)
from chat.domain.messages import Message

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def group(*members: tuple[str, Role]) -> Conversation:
    return Conversation(
        id="c1",
        kind=Kind.GROUP,
        created_by=members[0][0],
        created_at=NOW,
        members=tuple(Member(u, r) for u, r in members),
        title="t",
    )


def message(sender: str = "alice", **kw: object) -> Message:
    base: dict[str, object] = {
        "id": "m1",
        "conversation_id": "c1",
        "seq": 1,
        "sender_id": sender,
        "client_msg_id": "x",
        "body": "hi",
        "created_at": NOW,
    }
    base.update(kw)
    return Message(**base)  # type: ignore[arg-type]


OWNED = group(("owner", Role.OWNER), ("admin", Role.ADMIN), ("bob", Role.MEMBER))


def test_a_direct_conversation_has_exactly_two_members() -> None:
    members = conv_rules.plan_members(
        kind=Kind.DIRECT, creator_id="a", member_ids=["b", "a"], title=None, member_limit=10
    )
    assert [m.user_id for m in members] == ["a", "b"]
    with pytest.raises(InvalidError):
        conv_rules.plan_members(
            kind=Kind.DIRECT, creator_id="a", member_ids=["b", "c"], title=None, member_limit=10
        )
    with pytest.raises(InvalidError):
        conv_rules.plan_members(
            kind=Kind.DIRECT, creator_id="a", member_ids=["a"], title=None, member_limit=10
        )


def test_the_direct_pair_is_the_same_whoever_creates_it() -> None:
    assert conv_rules.direct_pair("a", "b") == conv_rules.direct_pair("b", "a")


def test_a_group_has_a_title_an_owner_and_a_member_limit() -> None:
    members = conv_rules.plan_members(
        kind=Kind.GROUP, creator_id="a", member_ids=["b", "c", "b"], title="t", member_limit=3
    )
    assert [(m.user_id, m.role) for m in members] == [
        ("a", Role.OWNER),
        ("b", Role.MEMBER),
        ("c", Role.MEMBER),
    ]
    with pytest.raises(InvalidError):
        conv_rules.plan_members(
            kind=Kind.GROUP, creator_id="a", member_ids=["b"], title=None, member_limit=3
        )
    with pytest.raises(GroupFullError, match="at most 3 members") as full:
        conv_rules.plan_members(
            kind=Kind.GROUP, creator_id="a", member_ids=["b", "c", "d"], title="t", member_limit=3
        )
    assert full.value.code == "invalid" and full.value.limit == 3


def test_only_owner_and_admins_add_and_only_the_owner_makes_admins() -> None:
    assert conv_rules.check_add(OWNED, "admin", ["x", "bob"], Role.MEMBER, member_limit=9) == ["x"]
    with pytest.raises(ForbiddenError):
        conv_rules.check_add(OWNED, "bob", ["x"], Role.MEMBER, member_limit=9)
    with pytest.raises(ForbiddenError):
        conv_rules.check_add(OWNED, "admin", ["x"], Role.ADMIN, member_limit=9)
    assert conv_rules.check_add(OWNED, "owner", ["x"], Role.ADMIN, member_limit=9) == ["x"]
    with pytest.raises(GroupFullError):
        conv_rules.check_add(OWNED, "owner", ["x"], Role.MEMBER, member_limit=3)
    with pytest.raises(NotFoundError):
        conv_rules.check_add(OWNED, "stranger", ["x"], Role.MEMBER, member_limit=9)


def test_only_a_higher_role_removes_a_member() -> None:
    conv_rules.check_remove(OWNED, "admin", "bob")
    conv_rules.check_remove(OWNED, "owner", "admin")
    with pytest.raises(ForbiddenError):
        conv_rules.check_remove(OWNED, "admin", "owner")
    with pytest.raises(ForbiddenError):
        conv_rules.check_remove(OWNED, "bob", "admin")


def test_an_owner_who_leaves_hands_over_to_the_first_admin_else_member() -> None:
    assert conv_rules.successor_on_leave(OWNED, "owner") == "admin"
    plain = group(("owner", Role.OWNER), ("bob", Role.MEMBER), ("carol", Role.MEMBER))
    assert conv_rules.successor_on_leave(plain, "owner") == "bob"
    assert conv_rules.successor_on_leave(plain, "bob") is None


def test_nobody_joins_or_leaves_a_direct_conversation() -> None:
    direct = Conversation(
        id="d",
        kind=Kind.DIRECT,
        created_by="a",
        created_at=NOW,
        members=(Member("a", Role.MEMBER), Member("b", Role.MEMBER)),
    )
    with pytest.raises(ForbiddenError):
        conv_rules.successor_on_leave(direct, "a")
    with pytest.raises(ForbiddenError):
        conv_rules.check_add(direct, "a", ["c"], Role.MEMBER, member_limit=9)


def test_mentions_must_be_members() -> None:
    assert msg_rules.check_mentions(OWNED, ["bob", "admin", "bob"]) == ("bob", "admin")
    with pytest.raises(InvalidError):
        msg_rules.check_mentions(OWNED, ["stranger"])


def test_only_the_sender_edits_and_the_edit_time_is_kept() -> None:
    later = datetime(2026, 1, 2, tzinfo=UTC)
    edited = msg_rules.edit(message(), editor_id="alice", body="new", at=later)
    assert (edited.body, edited.edited_at, edited.version) == ("new", later, 2)
    with pytest.raises(ForbiddenError):
        msg_rules.edit(message(), editor_id="bob", body="new", at=later)
    with pytest.raises(ConflictError):
        msg_rules.edit(message(deleted=True), editor_id="alice", body="new", at=later)


def test_delete_leaves_a_tombstone_by_sender_or_group_admin() -> None:
    tomb = msg_rules.delete(message(mentions=("bob",)), conv=OWNED, actor_id="alice")
    assert (tomb.deleted, tomb.body, tomb.mentions, tomb.seq) == (True, "", (), 1)
    assert msg_rules.delete(message(), conv=OWNED, actor_id="admin").deleted
    with pytest.raises(ForbiddenError):
        msg_rules.delete(message(), conv=OWNED, actor_id="bob")
    assert msg_rules.delete(tomb, conv=OWNED, actor_id="alice") is tomb


def test_history_windows_are_ascending_and_bounded() -> None:
    assert list(msg_rules.window(last_seq=10, before=None, after=None, limit=3).seqs) == [8, 9, 10]
    assert list(msg_rules.window(last_seq=10, before=5, after=None, limit=3).seqs) == [2, 3, 4]
    assert list(msg_rules.window(last_seq=10, before=2, after=None, limit=3).seqs) == [1]
    assert list(msg_rules.window(last_seq=10, before=None, after=8, limit=5).seqs) == [9, 10]
    assert list(msg_rules.window(last_seq=0, before=None, after=None, limit=5).seqs) == []
    with pytest.raises(InvalidError):
        msg_rules.window(last_seq=10, before=None, after=None, limit=101)
    with pytest.raises(InvalidError):
        msg_rules.window(last_seq=10, before=5, after=1, limit=5)


def test_a_read_marker_never_moves_back_nor_past_the_last_message() -> None:
    assert reading.advance(current=5, requested=3, last_seq=10) == reading.MarkerMove(5, False)
    assert reading.advance(current=5, requested=8, last_seq=10) == reading.MarkerMove(8, True)
    assert reading.advance(current=5, requested=99, last_seq=10) == reading.MarkerMove(10, True)


def test_own_and_deleted_messages_are_never_unread() -> None:
    assert reading.is_unread(seq=3, sender_id="b", deleted=False, reader_id="a", marker=2)
    assert not reading.is_unread(seq=3, sender_id="a", deleted=False, reader_id="a", marker=2)
    assert not reading.is_unread(seq=3, sender_id="b", deleted=True, reader_id="a", marker=2)
    assert not reading.is_unread(seq=2, sender_id="b", deleted=False, reader_id="a", marker=2)
