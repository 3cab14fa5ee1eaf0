"""What every part of the gateway's API is built from: one :class:`GatewayDeps` per instance.

``bootstrap.build`` makes it and hands it to the REST routes and to ``install_realtime(app, deps)``
/ ``install_graphql(app, deps)``. Fields:

* ``runtime``: the started :class:`ServiceRuntime` (``.redis``, ``.settings``, ``.name``);
* ``settings``: the gateway :class:`~gateway.config.Settings`;
* ``backend``: :class:`~gateway.handlers.backend.Backend` (typed commands to the services);
* ``tokens``: :class:`~gateway.handlers.tokens.TokenVerifier` (``await verify(token)``,
  ``on_revoked(cb)``);
* ``pubsub``: :class:`shared.pubsub.PubSub` on the runtime's client (real-time channels);
* ``limits``: :class:`~gateway.handlers.limits.ApiLimits` (per-user and per-address limiters);
* ``responses``: :class:`~gateway.handlers.responses.ResponseCache` (cached GET responses per
  viewer, invalidated by tags such as ``profile:<user id>`` or ``conv:<conversation id>``);
* ``connection_slots``: :class:`~gateway.store.protocols.ConnectionSlots` (each user's live
  WebSockets over every gateway, for the per-user cap);
* ``keyspace``: ``KeySpace("gateway")``; ``instance_id``: this instance's id.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Settings
from gateway.handlers.backend import Backend
from gateway.handlers.limits import ApiLimits
from gateway.handlers.responses import ResponseCache
from gateway.handlers.tokens import TokenVerifier
from gateway.store.protocols import ConnectionSlots
from shared.keys import KeySpace
from shared.pubsub import PubSub
from shared.service.runtime import ServiceRuntime


@dataclass(frozen=True, kw_only=True)
class GatewayDeps:
    """The wired parts of one gateway instance (see the module docstring)."""

    runtime: ServiceRuntime
    settings: Settings
    backend: Backend
    tokens: TokenVerifier
    pubsub: PubSub
    limits: ApiLimits
    responses: ResponseCache
    connection_slots: ConnectionSlots
    keyspace: KeySpace
    instance_id: str
