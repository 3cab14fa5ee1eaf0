"""Dispatch and delivery: announcements and outbound jobs go through the outbox.

What a transaction announces is staged and written in that transaction, next to the
notifications: the ``notification.events`` entries (created, read) and the delivery jobs of the
outbound channels (log, webhook), which may be slow or fail, so they go through the delivery
queue and its workers, which retry, record the outcome in ``deliveries`` and dead-letter. Right
after the commit the entries are appended (the outbox's relay appends them later when that
fails or the process dies first) and the in-app frames, which carry the entries' envelopes, are
pushed on the users' channels: best effort, a client that missed one lists its notifications.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from contracts.base import utcnow
from contracts.notification import NotificationsRead
from notification.domain.delivery import ChannelName, DeliveryJob
from notification.domain.errors import DeliveryFailedError
from notification.store.protocols import (
    BadgeChange,
    Badges,
    Channel,
    InstantChannel,
    NotificationStore,
    Outbox,
    Unit,
)
from notification.store.redis_delivery import entry_of
from notification.store.wire import created_event
from shared.outbox import Staged

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What one transaction wrote to the outbox, and what goes out after its commit."""

    entries: list[Staged] = field(default_factory=list)
    """Stream entries (events and delivery jobs), written in the transaction."""
    frames: list[tuple[str, Staged]] = field(default_factory=list)
    """``(user id, event)`` for the users' real-time channels."""
    loaded: dict[str, int] = field(default_factory=dict)
    """Badge counts read from the database for missing counters (created after the commit)."""
    versions: dict[str, int] = field(default_factory=dict)
    """The badge versions of the missing counters, which the counts are stored against."""
    applied: dict[str, int] = field(default_factory=dict)
    """Badge deltas applied to existing counters before the commit (taken back if it fails)."""


@dataclass(frozen=True, slots=True)
class _Counts:
    counts: dict[str, int]
    """Per user, the badge count the announcement carries."""
    loaded: dict[str, int]
    """Counted in the transaction: the counter was missing (or Redis failed)."""
    versions: dict[str, int]
    """The badge versions of the missing counters."""
    applied: dict[str, int]
    """Deltas applied to existing counters."""


class Dispatcher:
    """Stages announcements and jobs in a transaction; sends them after its commit."""

    def __init__(self, *, outbox: Outbox, badges: Badges, in_app: InstantChannel) -> None:
        self._outbox = outbox
        self._badges = badges
        self._in_app = in_app

    async def created(
        self, unit: Unit, jobs: Sequence[DeliveryJob], deltas: dict[str, int]
    ) -> Dispatch:
        """Inside the transaction of created or grown notifications: apply the badge deltas
        (the announcements carry the counts), stage the in-app announcements and the outbound
        jobs, and write them with the notifications.

        ``deltas``: per user, +1 for a created notification, 0 for a grown one. They are applied
        just before the commit; a failure after that (here, or the commit itself: the caller then
        calls :meth:`rolled_back`) takes them back. A crash in between over-counts until the
        counter expires (as a crash after the commit and before the deltas would under-count).
        A counter that is missing, or Redis failing, is answered by the database in this
        transaction.
        """
        announced = {j.notification.user_id: 0 for j in jobs if not j.queued}
        change = await self._counts(unit, {**announced, **deltas})
        counts, loaded, applied = change.counts, change.loaded, change.applied
        try:
            entries: list[Staged] = []
            frames: list[tuple[str, Staged]] = []
            for job in jobs:
                if job.queued:
                    entries.append(self._outbox.stage(entry_of(job)))
                    continue
                user_id = job.notification.user_id
                staged = self._outbox.stage(created_event(job.notification, counts[user_id]))
                entries.append(staged)
                frames.append((user_id, staged))
            await unit.write_outbox(entries)
        except Exception:
            await self._take_back(applied)
            raise
        return Dispatch(entries, frames, loaded, change.versions, applied)

    async def rolled_back(self, dispatch: Dispatch) -> None:
        """The transaction ``dispatch`` was staged in did not commit: take its deltas back."""
        await self._take_back(dispatch.applied)

    async def read(
        self,
        unit: Unit,
        user_id: str,
        *,
        ids: Sequence[str],
        conversation_id: str | None,
        unread_count: int,
    ) -> Dispatch:
        """Inside the transaction that marked notifications read: stage and write the event."""
        event = NotificationsRead(
            user_id=user_id,
            ids=list(ids)[:1000],
            conversation_id=conversation_id,
            unread_count=unread_count,
        )
        staged = self._outbox.stage(event)
        await unit.write_outbox([staged])
        return Dispatch([staged], [(user_id, staged)])

    async def send(self, dispatch: Dispatch) -> None:
        """After the commit: append the entries, push the frames, create missing counters.

        Never raises: a failed append is left to the outbox's relay; a failed push or counter is
        logged (the notification is stored, and the counter loads on its next read).
        """
        await asyncio.gather(
            self._outbox.send(dispatch.entries),
            self._push(dispatch.frames),
            self._seed(dispatch.loaded, dispatch.versions),
        )

    async def _counts(self, unit: Unit, deltas: dict[str, int]) -> _Counts:
        try:
            change = await self._badges.add(deltas)
        except Exception as e:
            log.warning("badge deltas failed, counting in the database instead: %r", e)
            change = BadgeChange()
        counts = change.counts
        missing = [u for u in deltas if u not in counts]
        loaded = await unit.unread_counts(missing) if missing else {}
        applied = {u: d for u, d in deltas.items() if d and u in counts}
        return _Counts({**counts, **loaded}, loaded, change.versions, applied)

    async def _take_back(self, applied: dict[str, int]) -> None:
        if not applied:
            return
        try:
            await self._badges.add({u: -d for u, d in applied.items()})
        except Exception as e:  # the counters drift until they expire, as after a crash
            log.warning("taking back %d badge delta(s) failed: %r", len(applied), e)

    async def _push(self, frames: Sequence[tuple[str, Staged]]) -> None:
        if not frames:
            return
        try:
            await self._in_app.push(frames)
        except Exception as e:
            log.warning(
                "in-app frames of %d notification(s) (user %s...) failed: %r",
                len(frames),
                frames[0][0],
                e,
            )

    async def _seed(self, loaded: dict[str, int], versions: dict[str, int]) -> None:
        if not loaded:
            return
        try:
            await self._badges.seed(loaded, versions)
        except Exception as e:
            log.warning("creating %d badge counter(s) failed: %r", len(loaded), e)


class DeliveryHandlers:
    """Runs one delivery job; DeliveryFailedError (after the channel's retries) is final."""

    def __init__(
        self,
        *,
        store: NotificationStore,
        channels: Mapping[ChannelName, Channel],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._channels = channels
        self._clock = clock

    async def deliver(self, job: DeliveryJob) -> None:
        """Deliver, then record ``delivered``; on a final failure record ``dead_lettered``."""
        channel = self._channels.get(job.channel)
        if channel is None:
            raise DeliveryFailedError(f"no channel {job.channel!r} configured", attempts=0)
        try:
            attempts = await channel.send(job)
        except DeliveryFailedError as e:
            await self._record(job, "dead_lettered", e.attempts, str(e))
            raise
        await self._record(job, "delivered", attempts, None)

    async def _record(
        self,
        job: DeliveryJob,
        status: str,
        attempts: int,
        error: str | None,
    ) -> None:
        async with self._store.unit() as unit:
            await unit.record_outcome(
                job.notification.id,
                job.channel,
                status="delivered" if status == "delivered" else "dead_lettered",
                attempts=attempts,
                error=error,
                at=self._clock(),
            )
