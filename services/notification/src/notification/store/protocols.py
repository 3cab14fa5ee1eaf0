"""What the handlers need from storage and delivery; implemented in ``store`` and ``channels``.

Handlers depend on these protocols only, so the same handler code runs on fakes in unit tests and
on SQL + Redis in production.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from contracts.base import Event
from notification.domain.delivery import ChannelName, DeliveryJob
from notification.domain.notifications import Notification
from notification.domain.preferences import Audience, ConversationSettings, UserSettings
from shared.outbox import Staged

DeliveryStatus = Literal["queued", "delivered", "dead_lettered"]


class Unit(Protocol):
    """One database transaction: everything done through it commits or rolls back together."""

    async def claim(self, message_id: str) -> bool:
        """Record ``message_id`` as processed; False if it already was (then change nothing)."""
        ...

    async def members(self, conversation_id: str) -> list[str]:
        """The conversation's members, as projected from chat's events."""
        ...

    async def add_members(self, conversation_id: str, user_ids: Iterable[str]) -> None:
        """Project members joining (idempotent)."""
        ...

    async def remove_member(self, conversation_id: str, user_id: str) -> None:
        """Project a member leaving."""
        ...

    async def set_block(self, user_id: str, blocked_id: str, *, blocked: bool) -> None:
        """Project a block being placed or lifted."""
        ...

    async def audience(self, user_id: str) -> Audience:
        """A user's settings, conversation overrides and blocks (defaults when unknown)."""
        ...

    async def audiences(self, user_ids: Sequence[str]) -> dict[str, Audience]:
        """The audience of each of ``user_ids`` (set-based: a large group costs a few queries)."""
        ...

    async def save_settings(self, user_id: str, settings: UserSettings) -> None:
        """Store a user's settings."""
        ...

    async def save_conversation_settings(
        self, user_id: str, conversation_id: str, settings: ConversationSettings
    ) -> None:
        """Store (or, when all defaults, drop) a user's override for one conversation."""
        ...

    async def open_notifications(
        self, user_ids: Sequence[str], conversation_id: str, since: datetime
    ) -> dict[str, Notification]:
        """Per user, the newest unread plain-message notification of the conversation since."""
        ...

    async def save_notifications(
        self, created: Sequence[Notification], grown: Sequence[Notification]
    ) -> None:
        """Insert new notifications and update grown ones."""
        ...

    async def queue_deliveries(self, jobs: Sequence[DeliveryJob], *, at: datetime) -> None:
        """Record each job as ``queued`` (an outcome row per notification and channel)."""
        ...

    async def mark_read(
        self,
        user_id: str,
        *,
        ids: Sequence[str] = (),
        conversation_id: str | None = None,
        up_to_seq: int | None = None,
        everything: bool = False,
    ) -> list[str]:
        """Mark unread notifications read; returns the ids that changed."""
        ...

    async def unread_count(self, user_id: str) -> int:
        """The exact number of unread notifications of a user."""
        ...

    async def unread_counts(self, user_ids: Sequence[str]) -> dict[str, int]:
        """The exact unread counts of several users (zero included), in one query."""
        ...

    async def write_outbox(self, staged: Sequence[Staged]) -> None:
        """Store stream entries in this transaction; they are appended after the commit."""
        ...

    async def page(
        self, user_id: str, *, before: tuple[datetime, str] | None, limit: int
    ) -> list[Notification]:
        """Notifications newest first (by last activity, then id), strictly before a position."""
        ...

    async def record_outcome(
        self,
        notification_id: str,
        channel: ChannelName,
        *,
        status: DeliveryStatus,
        attempts: int,
        error: str | None,
        at: datetime,
    ) -> None:
        """Record how delivering one notification on one channel ended."""
        ...


class NotificationStore(Protocol):
    """Opens units of work on the service's database."""

    def unit(self) -> AbstractAsyncContextManager[Unit]:
        """A transaction, committed on normal exit, rolled back on an exception."""
        ...


AudienceLoader = Callable[[Sequence[str]], Awaitable[dict[str, Audience]]]
"""Loads the audiences of several users at once (one unit of work for all the misses)."""


class AudienceCache(Protocol):
    """Cache-aside of each user's :class:`Audience`, invalidated when any part changes."""

    async def get_many(self, user_ids: Sequence[str], load: AudienceLoader) -> dict[str, Audience]:
        """Audiences of ``user_ids``, loading the missing ones with ``load`` (in batches)."""
        ...

    async def invalidate(self, user_id: str) -> None:
        """Forget a user's cached audience (after a change is committed)."""
        ...


MembersLoader = Callable[[], Awaitable[list[str]]]


class MembersCache(Protocol):
    """Cache-aside of each conversation's projected members, dropped on membership changes."""

    async def get(self, conversation_id: str, load: MembersLoader) -> list[str]:
        """The members, loaded with ``load`` when not cached."""
        ...

    async def invalidate(self, conversation_id: str) -> None:
        """Forget a conversation's cached members (after a change is committed)."""
        ...


class RealtimeState(Protocol):
    """Ephemeral presence and "viewing" state, fed by events and the gateway."""

    async def set_presence(self, user_id: str, *, online: bool) -> None:
        """Record a user going online or offline (offline also ends viewing)."""
        ...

    async def set_viewing(self, user_id: str, conversation_id: str | None) -> None:
        """Record which conversation a user has open (None: none); expires unless refreshed."""
        ...

    async def viewers(self, conversation_id: str) -> frozenset[str]:
        """Users viewing the conversation now (going offline ends a user's viewing)."""
        ...

    async def online(self, user_ids: Sequence[str]) -> frozenset[str]:
        """Those of ``user_ids`` who are online now."""
        ...


BadgeLoader = Callable[[], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class BadgeChange:
    """What :meth:`Badges.add` found: counts of the counters that exist, after the change, and
    for each missing counter the version a count read afterwards may be stored against."""

    counts: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)


class Badges(Protocol):
    """Unread badge counts kept in Redis, reconciled from the database.

    A database count may only become a counter when no change began or ended between the
    moment it was read and the moment it is stored: every change bumps the user's version, and
    a count is stored against the version seen before it was read (otherwise the counter is
    dropped, and the next read counts again)."""

    async def add(self, deltas: dict[str, int]) -> BadgeChange:
        """Apply changes to the counters that exist (a zero delta just reads them).

        The counts after the change of the users whose counter exists, so announcements need no
        second round trip, and for the missing ones the version to :meth:`seed` against."""
        ...

    async def get(self, user_id: str, load: BadgeLoader) -> int:
        """The badge count, loaded from the database when not held."""
        ...

    async def reconcile(self, user_id: str, count: int) -> None:
        """Set the counter to the database's exact count."""
        ...

    async def seed(self, counts: dict[str, int], versions: dict[str, int]) -> None:
        """After a commit: store the counts read in its transaction for the users whose counter
        was missing, each only if its version is still the one :meth:`add` answered (a user
        without one, or whose version moved, has the counter dropped instead)."""
        ...


class Outbox(Protocol):
    """Stream entries written in the transaction of their change, appended after its commit
    (``shared.outbox.Outbox``; its relay appends what a crash or a failed append left)."""

    def stage(self, event: Event) -> Staged:
        """``event`` with its envelope and partition key, ready to write and append."""
        ...

    async def send(self, staged: Sequence[Staged]) -> bool:
        """Append committed entries; never raises (False: the relay appends them later)."""
        ...


class InstantChannel(Protocol):
    """The user's real-time channel: staged events pushed right after the commit (in-app)."""

    async def push(self, events: Sequence[tuple[str, Staged]]) -> None:
        """Each ``(user id, staged event)`` on the user's channel, under the entry's envelope."""
        ...


class Channel(Protocol):
    """An outbound (or in-app) channel; raises DeliveryFailedError when it could not deliver."""

    @property
    def name(self) -> ChannelName:
        """The channel's name (as jobs name it)."""
        ...

    async def send(self, job: DeliveryJob) -> int:
        """Deliver one notification; returns the number of attempts it took."""
        ...


class WebhookSecretStore(Protocol):
    """Each user's webhook secret, stored sealed (the store never sees it in the clear)."""

    async def put(self, user_id: str, sealed: bytes) -> None:
        """Store ``sealed`` as the user's secret, replacing any previous one."""
        ...

    async def get(self, user_id: str) -> bytes | None:
        """The user's sealed secret, or None."""
        ...

    async def delete(self, user_id: str) -> None:
        """Forget the user's secret (no-op when there is none)."""
        ...


class Webhooks(Protocol):
    """What the preference handlers need of webhooks: the guard and the secrets."""

    enabled: bool
    """Whether secrets can be issued (the service has its webhook master key)."""

    async def check(self, url: str) -> None:
        """Raise UnsafeWebhookError for a URL that must not be called."""
        ...

    async def issue_secret(self, user_id: str) -> str:
        """A new secret (``whsec_...``) replacing the user's old one; shown to them once."""
        ...

    async def forget_secret(self, user_id: str) -> None:
        """Drop the user's secret (the webhook was removed)."""
        ...
