"""Messages of the gateway: connection facts that the user service turns into presence.

They go to ``gateway.events``, partitioned by user id so one user's connection facts stay in order,
with a short retention (presence that old is meaningless).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from contracts.base import Event, Id

__all__ = ["ConnectionClosed", "ConnectionHeartbeat", "ConnectionOpened"]

EVENTS = "gateway.events"

DeviceId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class ConnectionOpened(Event, frozen=True, kw_only=True):
    """A user's device connected to a gateway instance."""

    TYPE = "gateway.connection_opened"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    device_id: DeviceId
    connection_id: Id
    gateway_id: Id


class ConnectionHeartbeat(Event, frozen=True, kw_only=True):
    """A connected device is still there (sent well within the presence TTL)."""

    TYPE = "gateway.connection_heartbeat"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    device_id: DeviceId
    connection_id: Id
    gateway_id: Id


class ConnectionClosed(Event, frozen=True, kw_only=True):
    """A user's device disconnected."""

    TYPE = "gateway.connection_closed"
    STREAM = EVENTS
    KEY = "user_id"

    user_id: Id
    device_id: DeviceId
    connection_id: Id
    gateway_id: Id
