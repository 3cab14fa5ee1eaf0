"""Test aids for code that publishes on the bus (no Redis mocks: these wrap the real publisher)."""

from __future__ import annotations

from shared.bus import wire
from shared.bus.publisher import Publisher


class RefusingPublisher(Publisher):
    """A :class:`Publisher` whose appends fail while ``refusing`` is set, as when Redis refuses
    them (a failover, a full memory) or the connection drops; clear it and appends go through."""

    refusing = True

    async def append(self, key: str, fields: wire.Fields) -> str:
        if self.refusing:
            raise ConnectionError("Redis is unreachable")
        return await super().append(key, fields)
