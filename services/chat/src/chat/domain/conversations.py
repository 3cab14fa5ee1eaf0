"""Conversations and their members: the rules of who may be in one and who may change it.

A direct conversation has exactly two members, one conversation per pair (the normalized pair is
its identity), and nobody joins or leaves it. A group has a title, an owner, admins and members,
and at most ``member_limit`` members.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from chat.domain.errors import ForbiddenError, GroupFullError, InvalidError, NotFoundError

DEFAULT_MEMBER_LIMIT = 1000


class Kind(enum.StrEnum):
    """What kind of conversation."""

    DIRECT = "direct"
    GROUP = "group"


class Role(enum.StrEnum):
    """A member's role; the order of :data:`_RANK` is the order of power."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


_RANK = {Role.OWNER: 3, Role.ADMIN: 2, Role.MEMBER: 1}


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a conversation."""

    user_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation's metadata and members (without its ever-moving last sequence number)."""

    id: str
    kind: Kind
    created_by: str
    created_at: datetime
    members: tuple[Member, ...]
    title: str | None = None
    member_ids: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "member_ids", frozenset(m.user_id for m in self.members))

    def role_of(self, user_id: str) -> Role | None:
        """The role of ``user_id``, or None when not a member."""
        for m in self.members:
            if m.user_id == user_id:
                return m.role
        return None

    def require_reader(self, user_id: str) -> Role:
        """The role of a member; a non-member learns nothing, not even that it exists."""
        role = self.role_of(user_id)
        if role is None:
            raise NotFoundError(f"no conversation {self.id}")
        return role


def direct_pair(a: str, b: str) -> str:
    """The normalized identity of the direct conversation between ``a`` and ``b``."""
    if a == b:
        raise InvalidError("a direct conversation needs two different users")
    low, high = sorted((a, b))
    return f"{low}|{high}"


def plan_members(
    *, kind: Kind, creator_id: str, member_ids: list[str], title: str | None, member_limit: int
) -> tuple[Member, ...]:
    """The members of a new conversation (the creator first), or InvalidError."""
    others = list(dict.fromkeys(m for m in member_ids if m != creator_id))
    if kind is Kind.DIRECT:
        if len(others) != 1:
            raise InvalidError("a direct conversation has exactly one other member")
        if title is not None:
            raise InvalidError("a direct conversation has no title")
        return (Member(creator_id, Role.MEMBER), Member(others[0], Role.MEMBER))
    if not title:
        raise InvalidError("a group needs a title")
    if 1 + len(others) > member_limit:
        raise GroupFullError(member_limit)
    return (Member(creator_id, Role.OWNER), *(Member(m, Role.MEMBER) for m in others))


def check_add(
    conv: Conversation, actor_id: str, new_ids: list[str], role: Role, *, member_limit: int
) -> list[str]:
    """The users that ``actor_id`` may add now (already-members are skipped), or an error."""
    actor = conv.require_reader(actor_id)
    if conv.kind is Kind.DIRECT:
        raise ForbiddenError("members of a direct conversation cannot change")
    if _RANK[actor] < _RANK[Role.ADMIN]:
        raise ForbiddenError("only the owner and admins add members")
    if role is Role.OWNER or (role is Role.ADMIN and actor is not Role.OWNER):
        raise ForbiddenError("only the owner makes admins, and a group has one owner")
    fresh = [u for u in dict.fromkeys(new_ids) if u not in conv.member_ids]
    if len(conv.members) + len(fresh) > member_limit:
        raise GroupFullError(member_limit)
    return fresh


def check_remove(conv: Conversation, actor_id: str, target_id: str) -> None:
    """Raise unless ``actor_id`` may remove ``target_id`` (someone of a lower role)."""
    actor = conv.require_reader(actor_id)
    if conv.kind is Kind.DIRECT:
        raise ForbiddenError("members of a direct conversation cannot change")
    target = conv.role_of(target_id)
    if target is None:
        raise NotFoundError(f"{target_id} is not a member")
    if target_id == actor_id:
        raise InvalidError("use leave to leave a conversation")
    if _RANK[actor] < _RANK[Role.ADMIN] or _RANK[actor] <= _RANK[target]:
        raise ForbiddenError("only a higher role removes a member")


def successor_on_leave(conv: Conversation, user_id: str) -> str | None:
    """Check that ``user_id`` may leave; returns who becomes owner when the owner leaves.

    The owner's role passes to the first admin, else to the first member (members are kept in
    joining order), so a group never stays without an owner while it has members.
    """
    role = conv.require_reader(user_id)
    if conv.kind is Kind.DIRECT:
        raise ForbiddenError("nobody leaves a direct conversation")
    if role is not Role.OWNER:
        return None
    rest = [m for m in conv.members if m.user_id != user_id]
    for wanted in (Role.ADMIN, Role.MEMBER):
        for m in rest:
            if m.role is wanted:
                return m.user_id
    return None
