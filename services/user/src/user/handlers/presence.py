"""Presence use cases: connection reports from gateways, the sweeper, presence queries."""

from __future__ import annotations

import asyncio
import logging

from contracts import gateway as gateway_contracts
from contracts import user as wire
from contracts.base import Envelope
from user.domain.presence import PresenceChange
from user.domain.relationships import presence_audience
from user.store.protocols import (
    EventPublisher,
    PersonalChannels,
    PresenceStore,
    RelationshipStore,
)

log = logging.getLogger(__name__)

DeviceReport = gateway_contracts.ConnectionOpened | gateway_contracts.ConnectionHeartbeat


class PresenceHandlers:
    """Turns device reports into debounced presence changes and announces each one once."""

    def __init__(
        self,
        presence: PresenceStore,
        relationships: RelationshipStore,
        events: EventPublisher,
        channels: PersonalChannels,
    ) -> None:
        self._presence = presence
        self._relationships = relationships
        self._events = events
        self._channels = channels

    async def device_seen(self, message: DeviceReport, _: Envelope | None = None) -> None:
        """A device connected or heartbeated."""
        change = await self._presence.connected(message.user_id, message.device_id)
        if change is not None:
            await self.announce(change)

    async def device_closed(
        self, message: gateway_contracts.ConnectionClosed, _: Envelope | None = None
    ) -> None:
        """A device disconnected (offline follows after the grace, if no device returns)."""
        change = await self._presence.disconnected(message.user_id, message.device_id)
        if change is not None:
            await self.announce(change)

    async def sweep(self, *, limit: int = 500) -> int:
        """Settle users whose devices vanished or whose grace ended; returns changes made."""
        changes = await self._presence.sweep(limit=limit)
        await asyncio.gather(*(self.announce(c) for c in changes))
        return len(changes)

    async def get_presence(self, command: wire.GetPresence, _: Envelope) -> wire.PresenceList:
        """Presence of many users in one call."""
        user_ids = list(dict.fromkeys(command.user_ids))
        states, hidden = await asyncio.gather(
            self._presence.states(user_ids), self._hidden_from(command.viewer_id, user_ids)
        )
        return wire.PresenceList(
            items=[
                wire.Presence(user_id=s.user_id, status="offline")
                if s.user_id in hidden
                else wire.Presence(user_id=s.user_id, status=s.status, last_seen=s.last_seen)
                for s in states
            ]
        )

    async def _hidden_from(self, viewer_id: str | None, user_ids: list[str]) -> set[str]:
        """Those of ``user_ids`` who blocked the viewer (one cached list: who blocked them)."""
        if viewer_id is None:
            return set()
        return set(await self._relationships.blocked_by(viewer_id)) & set(user_ids)

    async def announce(self, change: PresenceChange) -> None:
        """Publish ``user.presence_changed`` and tell every online contact on their channel."""
        event = wire.PresenceChanged(
            user_id=change.user_id, status=change.status, last_seen=change.last_seen
        )
        await self._events.publish(event)
        watchers, blocked = await asyncio.gather(
            self._relationships.watchers(change.user_id),
            self._relationships.blocks(change.user_id),
        )
        audience = presence_audience(watchers, blocked)
        if not audience:
            return
        online = [s.user_id for s in await self._presence.states(audience) if s.status == "online"]
        # Best effort: a channel is a fast path; the event above is the record.
        results = await asyncio.gather(
            *(self._channels.send(uid, event) for uid in online), return_exceptions=True
        )
        for uid, result in zip(online, results, strict=True):
            if isinstance(result, Exception):
                log.warning("presence of %s not sent to %s: %r", change.user_id, uid, result)
