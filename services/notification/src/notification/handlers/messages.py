"""From a posted message to notifications: decide, coalesce, store, count, dispatch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.base import new_message_id, utcnow
from contracts.chat import MessagePosted
from notification.domain.deciding import Decision, PostedMessage, Verdict, decide
from notification.domain.delivery import DeliveryJob, channels_for
from notification.domain.notifications import Notification, coalesce, preview_of
from notification.domain.preferences import Audience
from notification.handlers.delivering import Dispatch, Dispatcher
from notification.store.protocols import (
    AudienceCache,
    MembersCache,
    NotificationStore,
    RealtimeState,
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one posted message caused: every decision, and the notifications created or grown."""

    decisions: list[Decision]
    created: list[Notification]
    grown: list[Notification]


class MessageHandlers:
    """Turns ``chat.message_posted`` into notifications."""

    def __init__(
        self,
        *,
        store: NotificationStore,
        audiences: AudienceCache,
        members: MembersCache,
        realtime: RealtimeState,
        dispatcher: Dispatcher,
        coalesce_window: timedelta,
        clock: Callable[[], datetime] = utcnow,
        new_id: Callable[[], str] = new_message_id,
    ) -> None:
        self._store = store
        self._audiences = audiences
        self._members = members
        self._realtime = realtime
        self._dispatcher = dispatcher
        self._window = coalesce_window
        self._clock = clock
        self._new_id = new_id

    async def load_audience(self, user_id: str) -> Audience:
        """A user's audience from the database."""
        return (await self.load_audiences([user_id]))[user_id]

    async def load_audiences(self, user_ids: Sequence[str]) -> dict[str, Audience]:
        """Audiences from the database, in one unit of work (the cache's loader)."""
        async with self._store.unit() as unit:
            return await unit.audiences(user_ids)

    async def load_members(self, conversation_id: str) -> list[str]:
        """A conversation's members from the database (the cache's loader)."""
        async with self._store.unit() as unit:
            return await unit.members(conversation_id)

    async def on_message_posted(self, event: MessagePosted, message_id: str) -> Outcome:
        """Notify the members who should be told; a redelivered event changes nothing."""
        m = event.message
        message = PostedMessage(
            message_id=m.id,
            conversation_id=event.conversation_id,
            seq=m.seq,
            sender_id=m.sender_id,
            mentions=frozenset(m.mentions),
            preview=preview_of(m.body),
            at=m.created_at,
        )
        # Reads first, outside the write transaction, so it stays short.
        conversation = event.conversation_id
        members = await self._members.get(conversation, lambda: self.load_members(conversation))
        viewing = await self._realtime.viewers(event.conversation_id)
        candidates = [u for u in members if u != m.sender_id and u not in viewing]
        audiences = await self._audiences.get_many(candidates, self.load_audiences)
        decisions = decide(
            message, members=members, audiences=audiences, viewing=viewing, now=self._clock()
        )
        told = [d for d in decisions if d.verdict.notifies]
        if not told:
            # Nothing to write (everyone is viewing, muted, ...): no transaction, nothing to dedupe.
            return Outcome(decisions, [], [])
        # Outbound channels are for members who are away; only they need the presence lookup.
        online = await self._realtime.online(
            [d.user_id for d in told if d.verdict is Verdict.NOTIFY]
        )
        dispatch: Dispatch | None = None
        try:
            async with self._store.unit() as unit:
                if not await unit.claim(message_id):
                    return Outcome(decisions, [], [])
                open_ = await unit.open_notifications(
                    [d.user_id for d in told], message.conversation_id, message.at - self._window
                )
                created: list[Notification] = []
                grown: list[Notification] = []
                jobs: list[DeliveryJob] = []
                for d in told:
                    n, is_new = coalesce(
                        open_.get(d.user_id), d, message, window=self._window, new_id=self._new_id()
                    )
                    (created if is_new else grown).append(n)
                    settings = audiences.get(d.user_id, Audience()).settings
                    jobs.extend(
                        DeliveryJob(notification=n, channel=c, webhook_url=settings.webhook_url)
                        for c in channels_for(d.verdict, settings, online=d.user_id in online)
                    )
                await unit.save_notifications(created, grown)
                await unit.queue_deliveries([j for j in jobs if j.queued], at=self._clock())
                # A grown notification leaves the badge as it is: a zero delta reads it.
                deltas = {**{n.user_id: 0 for n in grown}, **{n.user_id: 1 for n in created}}
                dispatch = await self._dispatcher.created(unit, jobs, deltas)
        except Exception:
            if dispatch is not None:  # the commit failed after the badge deltas were applied
                await self._dispatcher.rolled_back(dispatch)
            raise
        await self._dispatcher.send(dispatch)
        return Outcome(decisions, created, grown)
