"""Presence on the real cluster: online on heartbeat, flaps forgiven, offline after the TTL,
and each change told once to every online contact."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from contracts import auth as auth_contracts
from contracts import gateway as gw
from contracts import realtime, registry
from contracts import user as wire
from contracts.base import Envelope
from shared.bus import wire as bus_wire
from shared.pubsub import PubSub
from shared.redis.client import AnyRedis

pytestmark = pytest.mark.integration

# Short timings so the suite stays fast: a device is gone 1 s after its last heartbeat, a
# closed last device is forgiven for 0.4 s, the sweeper looks every 50 ms.
FAST = {
    "presence_device_ttl": 1.0,
    "presence_offline_grace": 0.4,
    "presence_sweep_interval": 0.05,
}
# A flap must come back within the grace; on a loaded 2-core machine the close and the reopen can
# land more than 0.4 s apart, so the flap test gives itself a wider grace.
FLAPS = {**FAST, "presence_offline_grace": 1.5}


async def _register(service: Any) -> str:
    suffix = secrets.token_hex(4)
    msg = auth_contracts.AccountRegistered(
        user_id=f"p-{suffix}", username=f"p_{suffix}", display_name=suffix
    )
    await service.profiles.account_registered(msg, Envelope.for_message(msg, producer="auth"))
    return msg.user_id


def _report(cls: Any, user_id: str, device: str) -> Any:
    return cls(user_id=user_id, device_id=device, connection_id="c1", gateway_id="g1")


async def _presence_events(client: AnyRedis, user_id: str) -> list[str]:
    key = registry.stream("user.events").key_for(user_id)
    found: list[str] = []
    entries: list[tuple[Any, Any]] = await client.xrange(key)  # type: ignore[assignment]
    for _, fields in entries:
        if bus_wire.decode_envelope(fields).type == wire.PresenceChanged.TYPE:
            event = bus_wire.decode_payload(wire.PresenceChanged, fields)
            if isinstance(event, wire.PresenceChanged) and event.user_id == user_id:
                found.append(event.status)
    return found


async def _next(sub: Any, within: float) -> wire.PresenceChanged:
    _, message = realtime.open_frame(await sub.get(timeout=within))
    assert isinstance(message, wire.PresenceChanged)
    return message


async def _drain(sub: Any, wait: float) -> list[wire.PresenceChanged]:
    got = []
    try:
        while True:
            got.append(await _next(sub, wait))
    except TimeoutError:
        return got


async def test_presence_follows_heartbeats_forgives_flaps_and_expires(
    make_service: Any, client: AnyRedis
) -> None:
    service = await make_service(started=True, **FLAPS)
    presence = service.presence
    user, watcher = await _register(service), await _register(service)
    add = wire.AddContact(user_id=watcher, contact_id=user)
    await service.relationships.add_contact(add, Envelope.for_message(add, producer="test"))
    await presence.device_seen(_report(gw.ConnectionOpened, watcher, "w-phone"))
    channel = registry.channel("rt.user").key(watcher)

    async with PubSub(client).subscribe(channel, realtime.Frame) as sub:
        await presence.device_seen(_report(gw.ConnectionOpened, user, "phone"))
        online = await _next(sub, 2.0)
        assert (online.user_id, online.status) == (user, "online")

        # A flap: the only device closes and comes back within the grace.
        await presence.device_closed(_report(gw.ConnectionClosed, user, "phone"))
        await asyncio.sleep(0.1)
        await presence.device_seen(_report(gw.ConnectionOpened, user, "phone"))
        await presence.device_seen(_report(gw.ConnectionHeartbeat, watcher, "w-phone"))
        assert await _drain(sub, 0.5) == []

        # Heartbeats keep the user online past the device TTL.
        for _ in range(5):
            await presence.device_seen(_report(gw.ConnectionHeartbeat, user, "phone"))
            await presence.device_seen(_report(gw.ConnectionHeartbeat, watcher, "w-phone"))
            await asyncio.sleep(0.3)
        assert await _drain(sub, 0.05) == []
        ask = wire.GetPresence(user_ids=[user])
        reply = await presence.get_presence(ask, Envelope.for_message(ask, producer="test"))
        assert reply.items[0].status == "online"

        # The device vanishes without closing: offline once the TTL has passed.
        await presence.device_seen(_report(gw.ConnectionHeartbeat, watcher, "w-phone"))
        offline = await _next(sub, 6.0)  # the device TTL, then the grace
        assert (offline.user_id, offline.status) == (user, "offline")
        assert offline.last_seen is not None
        assert await _drain(sub, 0.5) == []

    assert await _presence_events(client, user) == ["online", "offline"]


async def test_a_closed_last_device_goes_offline_after_the_grace(make_service: Any) -> None:
    service = await make_service(started=True, **FAST)
    user = await _register(service)
    await service.presence.device_seen(_report(gw.ConnectionOpened, user, "laptop"))
    await service.presence.device_seen(_report(gw.ConnectionOpened, user, "phone"))
    await service.presence.device_closed(_report(gw.ConnectionClosed, user, "laptop"))
    await service.presence.device_closed(_report(gw.ConnectionClosed, user, "phone"))
    ask = wire.GetPresence(user_ids=[user])
    env = Envelope.for_message(ask, producer="test")
    assert (await service.presence.get_presence(ask, env)).items[0].status == "online"
    await asyncio.sleep(0.7)
    assert (await service.presence.get_presence(ask, env)).items[0].status == "offline"


async def test_presence_of_many_users_is_answered_in_one_call(make_service: Any) -> None:
    service = await make_service(**FAST)
    users = [await _register(service) for _ in range(4)]
    for uid in users[:2]:
        await service.presence.device_seen(_report(gw.ConnectionOpened, uid, "d"))
    never_seen = f"ghost-{secrets.token_hex(3)}"
    ask = wire.GetPresence(user_ids=[*users, never_seen])
    reply = await service.presence.get_presence(ask, Envelope.for_message(ask, producer="test"))
    assert [(p.user_id, p.status) for p in reply.items] == [
        (users[0], "online"),
        (users[1], "online"),
        (users[2], "offline"),
        (users[3], "offline"),
        (never_seen, "offline"),
    ]
    assert reply.items[0].last_seen is not None and reply.items[4].last_seen is None


async def test_a_user_who_blocked_the_viewer_looks_offline_to_them_until_unblocked(
    make_service: Any,
) -> None:
    service = await make_service(**FAST)
    alice, bob, carol = [await _register(service) for _ in range(3)]
    await service.presence.device_seen(_report(gw.ConnectionOpened, alice, "d"))

    async def seen_by(viewer: str) -> wire.Presence:
        ask = wire.GetPresence(user_ids=[alice], viewer_id=viewer)
        reply = await service.presence.get_presence(ask, Envelope.for_message(ask, producer="t"))
        return reply.items[0]

    assert (await seen_by(bob)).status == "online"  # also caches who blocked bob (nobody)
    block = wire.BlockUser(user_id=alice, blocked_id=bob)
    await service.relationships.block_user(block, Envelope.for_message(block, producer="test"))
    hidden = await seen_by(bob)
    assert (hidden.status, hidden.last_seen) == ("offline", None)
    assert (await seen_by(carol)).status == "online"
    unblock = wire.UnblockUser(user_id=alice, blocked_id=bob)
    await service.relationships.unblock_user(unblock, Envelope.for_message(unblock, producer="t"))
    assert (await seen_by(bob)).status == "online"
