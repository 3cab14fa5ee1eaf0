"""Presence in Redis: devices with expiry scores per user, debounced transitions, due sets.

Each user's keys share the hash tag ``{user:<id>}``, so a report is one script in one slot and
a transition is observed by exactly one caller. When a user must be looked at again (a device
expiring, a grace ending) goes into one of ``DUE_PARTITIONS`` due sets (sorted sets user -> ms),
which :meth:`RedisPresenceStore.sweep` reads. Writing the due time is a second step (another
slot): it only ever moves a due time earlier, and the sweeper recomputes it from the user's own
keys, so a lost or early due time costs an extra look, never a missed transition once scheduled.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from shared.keys import KeySpace
from shared.redis.client import AnyRedis
from shared.ttl import TtlRule
from user.domain.presence import PresenceChange, PresencePolicy, PresenceState
from user.store import presence_scripts

DUE_PARTITIONS = 16


class RedisPresenceStore:
    """:class:`~user.store.protocols.PresenceStore` on the cluster."""

    def __init__(
        self, client: AnyRedis, keyspace: KeySpace, policy: PresencePolicy, *, retention: TtlRule
    ) -> None:
        self._client = client
        self._keys = keyspace
        self.policy = policy
        self._retention_ms = retention.sample_ms()
        self._ttl_ms = int(policy.device_ttl * 1000)
        self._grace_ms = int(policy.offline_grace * 1000)
        self._connect = client.register_script(presence_scripts.CONNECT)
        self._disconnect = client.register_script(presence_scripts.DISCONNECT)
        self._settle = client.register_script(presence_scripts.SETTLE)
        self._schedule = client.register_script(presence_scripts.SCHEDULE)
        self._reschedule = client.register_script(presence_scripts.RESCHEDULE)

    def user_keys(self, user_id: str) -> list[str]:
        """The user's ``devices`` and ``state`` keys (one slot)."""
        tag = f"user:{user_id}"
        return [
            self._keys.key("presence", tag=tag, rest="devices"),
            self._keys.key("presence", tag=tag, rest="state"),
        ]

    def due_key(self, partition: int) -> str:
        """Due set ``partition`` (0..DUE_PARTITIONS-1)."""
        return self._keys.key("presence", tag=f"due.{partition}")

    def _due_key_of(self, user_id: str) -> str:
        return self.due_key(zlib.crc32(user_id.encode()) % DUE_PARTITIONS)

    async def connected(self, user_id: str, device_id: str) -> PresenceChange | None:
        """See PresenceStore.connected."""
        args: list[str | int] = [_now_ms(), self._ttl_ms, device_id, self._retention_ms]
        result = await self._connect(keys=self.user_keys(user_id), args=args)
        return await self._after(user_id, result, status="online")

    async def disconnected(self, user_id: str, device_id: str) -> PresenceChange | None:
        """See PresenceStore.disconnected."""
        args: list[str | int] = [_now_ms(), device_id, self._grace_ms, self._retention_ms]
        result = await self._disconnect(keys=self.user_keys(user_id), args=args)
        return await self._after(user_id, result, status="offline")

    async def _after(self, user_id: str, result: Any, *, status: str) -> PresenceChange | None:
        changed, next_due, last_seen = (int(v) for v in result)
        if next_due >= 0:
            await self._schedule(keys=[self._due_key_of(user_id)], args=[user_id, next_due])
        if not changed:
            return None
        return PresenceChange(user_id=user_id, status=status, last_seen=_dt(last_seen))  # type: ignore[arg-type]

    async def sweep(self, *, limit: int) -> list[PresenceChange]:
        """See PresenceStore.sweep: every due partition, up to ``limit`` users each."""
        now = _now_ms()
        batches = await asyncio.gather(
            *(self._sweep_partition(p, now, limit) for p in range(DUE_PARTITIONS))
        )
        return [change for batch in batches for change in batch]

    async def _sweep_partition(self, partition: int, now: int, limit: int) -> list[PresenceChange]:
        due_key = self.due_key(partition)
        taken: list[tuple[Any, float]] = await self._client.zrangebyscore(  # type: ignore[assignment]
            due_key, "-inf", now, start=0, num=limit, withscores=True
        )
        if not taken:
            return []
        users = [_text(member) for member, _ in taken]
        results = await asyncio.gather(
            *(self._settle(keys=self.user_keys(u), args=[now]) for u in users)
        )
        changes: list[PresenceChange] = []
        triples: list[str | int] = []
        for user, (_member, score), result in zip(users, taken, results, strict=True):
            changed, next_due, last_seen = (int(v) for v in result)
            triples += [user, int(score), next_due]
            if changed:
                changes.append(
                    PresenceChange(user_id=user, status="offline", last_seen=_dt(last_seen))
                )
        await self._reschedule(keys=[due_key], args=triples)
        return changes

    async def states(self, user_ids: Sequence[str]) -> list[PresenceState]:
        """See PresenceStore.states: one pipelined round trip per node."""
        now = _now_ms()
        async with self._client.pipeline(transaction=False) as pipe:
            for uid in user_ids:
                devices, state = self.user_keys(uid)
                pipe.zcount(devices, f"({now}", "+inf")
                pipe.hmget(state, ["status", "last_seen", "offline_at"])
            replies = await pipe.execute()
        states = []
        for i, uid in enumerate(user_ids):
            live = int(replies[2 * i])
            status, last_seen, offline_at = (
                _text(v) if v is not None else None for v in replies[2 * i + 1]
            )
            in_grace = offline_at is not None and int(offline_at) > now
            online = status == "online" and (live > 0 or in_grace)
            seen = _dt(int(last_seen)) if last_seen is not None else None
            states.append(
                PresenceState(user_id=uid, status="online" if online else "offline", last_seen=seen)
            )
        return states


def _now_ms() -> int:
    return int(time.time() * 1000)


def _dt(ms: int) -> datetime | None:
    return None if ms < 0 else datetime.fromtimestamp(ms / 1000, UTC)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
