"""The presence sweeper: a background loop that settles expired devices and ended graces.

Every instance runs the loop; a ``shared.locks`` lease elects the one that sweeps, so the work is
not done N times (correctness does not depend on it: each transition is observed once anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from shared.keys import KeySpace
from shared.locks import LockError, RedisLock
from shared.redis.client import AnyRedis
from user.handlers.presence import PresenceHandlers

log = logging.getLogger(__name__)

LOCK_NAME = "presence-sweeper"


class PresenceSweeper:
    """Sweeps every ``interval`` seconds while this instance holds the sweeper lease."""

    def __init__(
        self,
        client: AnyRedis,
        keyspace: KeySpace,
        presence: PresenceHandlers,
        *,
        interval: float = 1.0,
    ) -> None:
        self._client = client
        self._keyspace = keyspace
        self._presence = presence
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="user-presence-sweeper")

    async def stop(self) -> None:
        """Stop the loop (and give up the lease)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            lock = RedisLock(
                self._client,
                self._keyspace,
                LOCK_NAME,
                ttl=max(3.0, self.interval * 5),
                timeout=self.interval,
            )
            try:
                async with lock:
                    while True:
                        await self._sweep_once()
                        await asyncio.sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except LockError:
                pass  # another instance sweeps; try again later
            except Exception:
                log.exception("presence sweep failed; retrying")
                await asyncio.sleep(self.interval)

    async def _sweep_once(self) -> None:
        try:
            await self._presence.sweep()
        except Exception:
            log.exception("presence sweep failed")
