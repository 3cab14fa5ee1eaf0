"""Who gets told about a posted message, and how loudly.

Rules, in order: the sender is never told; a member online and viewing the conversation sees the
message already; a member who blocked the sender never hears of them; a muted conversation tells
nobody until the mute ends; the level (``none``, ``mentions``, ``all``) filters, a mention getting
through ``mentions``; in do-not-disturb hours the notification is kept and counted but not pushed
to outbound channels (``quiet``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from notification.domain.preferences import Audience

Kind = Literal["message", "mention", "member_added"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PostedMessage:
    """The facts of a posted message the decision needs."""

    message_id: str
    conversation_id: str
    seq: int
    sender_id: str
    mentions: frozenset[str]
    preview: str
    at: datetime


class Verdict(enum.Enum):
    """The outcome for one member; the ``SKIP_*`` values say why nobody is told."""

    NOTIFY = "notify"
    NOTIFY_QUIETLY = "notify_quietly"
    SKIP_SENDER = "skip_sender"
    SKIP_VIEWING = "skip_viewing"
    SKIP_BLOCKED = "skip_blocked"
    SKIP_MUTED = "skip_muted"
    SKIP_LEVEL = "skip_level"

    @property
    def notifies(self) -> bool:
        """Whether a notification is created."""
        return self in (Verdict.NOTIFY, Verdict.NOTIFY_QUIETLY)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What one member gets."""

    user_id: str
    verdict: Verdict
    kind: Kind


def decide_one(
    message: PostedMessage, user_id: str, audience: Audience, *, viewing: bool, now: datetime
) -> Decision:
    """The decision for one member."""
    mentioned = user_id in message.mentions
    kind: Kind = "mention" if mentioned else "message"

    def verdict(v: Verdict) -> Decision:
        return Decision(user_id=user_id, verdict=v, kind=kind)

    if user_id == message.sender_id:
        return verdict(Verdict.SKIP_SENDER)
    if viewing:
        return verdict(Verdict.SKIP_VIEWING)
    if message.sender_id in audience.blocked:
        return verdict(Verdict.SKIP_BLOCKED)
    if audience.muted_in(message.conversation_id, now):
        return verdict(Verdict.SKIP_MUTED)
    level = audience.level_in(message.conversation_id)
    if level == "none" or (level == "mentions" and not mentioned):
        return verdict(Verdict.SKIP_LEVEL)
    if audience.settings.quiet_at(now):
        return verdict(Verdict.NOTIFY_QUIETLY)
    return verdict(Verdict.NOTIFY)


def decide(
    message: PostedMessage,
    *,
    members: Iterable[str],
    audiences: Mapping[str, Audience],
    viewing: frozenset[str],
    now: datetime,
) -> list[Decision]:
    """A decision per member (a member without an audience entry gets the defaults)."""
    default = Audience()
    return [
        decide_one(
            message, user_id, audiences.get(user_id, default), viewing=user_id in viewing, now=now
        )
        for user_id in members
    ]
