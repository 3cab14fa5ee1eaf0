"""Limits on opening WebSockets: handshakes per client address, connections per user.

Both are counted in Redis, so they hold over every gateway process: handshakes with a GCRA budget
per address (:mod:`shared.ratelimit`, checked before the token is even verified), connections
with one expiring slot each (:class:`gateway.store.protocols.ConnectionSlots`, renewed with the
heartbeats, so a crashed gateway's connections stop counting within ``slot_ttl``). They cost a
round trip per handshake, heartbeat and close, never per frame (the frame budget is in process:
:mod:`gateway.domain.frame_budget`).

Like the API's limits they fail open: when Redis cannot answer, the connection goes ahead (and
the log says so) rather than the real-time side failing with the cache.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter
from redis.exceptions import RedisClusterException, RedisError

from gateway.handlers.realtime_options import RealtimeOptions
from gateway.store.protocols import ConnectionSlots
from shared.ratelimit import RateLimiter

log = logging.getLogger(__name__)

# What Redis being unreachable looks like (RedisClusterException is not a RedisError; a timeout
# is an OSError): the limits then let connections through instead of failing them.
_UNREACHABLE = (RedisError, RedisClusterException, OSError)

REFUSED = Counter(
    "parley_gateway_ws_refused_total",
    "WebSocket handshakes, frames and resumes refused by a limit, by limit "
    "(handshakes, connections, frames, resumes).",
    ["limit"],
)


class SocketLimits:
    """The handshake budget and the per-user connection cap of one gateway instance."""

    def __init__(
        self, handshakes: RateLimiter, slots: ConnectionSlots, options: RealtimeOptions
    ) -> None:
        self._handshakes = handshakes
        self._slots = slots
        self._options = options

    async def handshake(self, address: str | None) -> float | None:
        """Count one handshake of ``address``: ``None`` if admitted, else seconds to wait."""
        if not address:
            return None
        try:
            result = await self._handshakes.check(address)
        except _UNREACHABLE as e:
            log.warning("handshake limit unavailable, letting the connection in: %s", e)
            return None
        if result.allowed:
            return None
        REFUSED.labels("handshakes").inc()
        return result.retry_after or 1.0

    async def claim(self, user_id: str, connection_id: str) -> bool:
        """Take one of the user's connection slots; false when all are taken."""
        try:
            claimed = await self._slots.claim(
                user_id,
                connection_id,
                cap=self._options.max_user_connections,
                ttl=self._options.slot_ttl,
            )
        except _UNREACHABLE as e:
            log.warning("connection count unavailable, letting the connection in: %s", e)
            return True
        if not claimed:
            REFUSED.labels("connections").inc()
        return claimed

    async def renew(self, user_id: str, connection_id: str) -> None:
        """Keep the connection's slot (with each heartbeat, see ``realtime_lifecycle``)."""
        try:
            await self._slots.renew(user_id, connection_id, ttl=self._options.slot_ttl)
        except _UNREACHABLE as e:
            log.warning("could not renew the slot of connection %s: %s", connection_id, e)

    async def release(self, user_id: str, connection_id: str) -> None:
        """Give the connection's slot back (on close)."""
        try:
            await self._slots.release(user_id, connection_id)
        except _UNREACHABLE as e:  # it lapses on its own
            log.warning("could not release the slot of connection %s: %s", connection_id, e)
