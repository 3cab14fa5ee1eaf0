"""A distributed lock on one Redis Cluster: lease, fencing token, renewal and a lost-lease signal.

>>> async with RedisLock(client, KeySpace("chat"), "conv:42", ttl=10.0) as held:
...     await store.write(..., fence=held.fencing_token)

Acquiring is one script: ``SET key token NX PX ttl`` and, only if that succeeded, ``INCR`` of a
counter in the same slot, whose value is the fencing token. While the block runs, a background task
extends the lease every ``ttl / 3``. If the lease is lost (the key expired, was deleted or now
holds another token, or Redis was unreachable until the lease must be assumed expired), the task
running the block is cancelled and the block raises :class:`LockLost`. See docs/redis-library.md
for the guarantees and their limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from types import TracebackType
from typing import Final

from prometheus_client import Counter, Histogram
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from shared.keys import KeySpace, same_slot
from shared.redis.client import AnyRedis

LOCK_WAIT_SECONDS: Final = Histogram(
    "parley_lock_wait_seconds",
    "Time spent waiting to acquire a distributed lock (successful or not).",
    ["service"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LOCK_ACQUISITIONS: Final = Counter(
    "parley_lock_acquisitions_total",
    "Attempts to acquire a distributed lock, by result (acquired, timeout).",
    ["service", "result"],
)
LOCK_LOSSES: Final = Counter(
    "parley_lock_losses_total",
    "Leases lost while held: the protected work was cancelled.",
    ["service"],
)

# KEYS: lock, fence counter. ARGV: token, ttl ms. Returns the fencing token, or nil if held.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return false
"""
# KEYS: lock. ARGV: token. Deletes only the holder's lease.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# KEYS: lock. ARGV: token, ttl ms. Extends only the holder's lease.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class LockError(Exception):
    """Root of the lock errors."""


class LockNotAcquired(LockError, TimeoutError):
    """The lock stayed held by someone else for the whole wait."""


class LockLost(LockError):
    """The lease was lost while held; the protected work was cancelled."""


class LockNotHeld(LockError):
    """Release or extend was asked of a lock this object does not hold."""


class _Scripts:
    """The lock's scripts for one client: redis-py retries EVALSHA after SCRIPT LOAD on NOSCRIPT."""

    def __init__(self, client: AnyRedis) -> None:
        self.acquire: AsyncScript = client.register_script(_ACQUIRE)
        self.release: AsyncScript = client.register_script(_RELEASE)
        self.extend: AsyncScript = client.register_script(_EXTEND)


class RedisLock:
    """An async distributed lock named ``name`` in ``keyspace``; use it as ``async with``.

    ``ttl`` is the lease in seconds; ``timeout`` bounds the wait to acquire (``0`` = one try,
    ``None`` = wait forever); ``renew`` keeps extending the lease while the block runs. One object
    guards one block at a time; make a new object (cheap) per critical section.
    """

    def __init__(
        self,
        client: AnyRedis,
        keyspace: KeySpace,
        name: str,
        *,
        ttl: float = 10.0,
        timeout: float | None = 10.0,
        renew: bool = True,
        retry_min: float = 0.005,
        retry_max: float = 0.2,
    ) -> None:
        if ttl < 0.01:
            raise ValueError("ttl must be at least 10 ms")
        self._client = client
        self._service = keyspace.prefix
        self.key = keyspace.key("lock", tag=name)
        self.fence_key = keyspace.key("lock", tag=name, rest="fence")
        same_slot(self.key, self.fence_key)
        self.ttl = ttl
        self.timeout = timeout
        self.renew = renew
        self._retry = (retry_min, retry_max)
        self._scripts = _Scripts(client)
        self._token: str | None = None
        self._fence: int | None = None
        self._expires_at = 0.0
        self._renewal: asyncio.Task[None] | None = None
        self._owner: asyncio.Task[object] | None = None
        self._owner_cancelling = 0
        self._cancelled_owner = False
        self._closing = False
        self.lost = asyncio.Event()
        """Set when the lease is lost while held; work outside the block can wait on it."""

    @property
    def fencing_token(self) -> int:
        """The strictly increasing number of this acquisition; pass it to the guarded resource."""
        if self._fence is None:
            raise LockNotHeld(f"{self.key} is not held by this object")
        return self._fence

    @property
    def held(self) -> bool:
        """Whether this object holds the lease (as far as it knows: lost leases are not held)."""
        return self._token is not None and not self.lost.is_set()

    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    async def try_acquire(self) -> bool:
        """One attempt: take the lease if free. Sets :attr:`fencing_token` on success."""
        if self._token is not None:
            raise LockError(f"{self.key}: this object already holds or held the lock")
        token = secrets.token_urlsafe(16)
        started = asyncio.get_running_loop().time()
        fence = await self._scripts.acquire(
            keys=[self.key, self.fence_key], args=[token, self._ttl_ms()], client=self._client
        )
        if fence is None:
            return False
        self._token, self._fence = token, int(fence)
        # The lease started no earlier than the request was sent; count from there.
        self._expires_at = started + self.ttl
        return True

    async def acquire(self) -> int:
        """Wait (bounded by ``timeout``, with jittered backoff) for the lease; return the fence."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = None if self.timeout is None else started + self.timeout
        delay = self._retry[0]
        try:
            while not await self.try_acquire():
                now = loop.time()
                if deadline is not None and now >= deadline:
                    LOCK_ACQUISITIONS.labels(self._service, "timeout").inc()
                    raise LockNotAcquired(f"{self.key} still held after {self.timeout}s")
                pause = random.uniform(self._retry[0], delay)  # full jitter spreads the herd
                if deadline is not None:
                    pause = min(pause, deadline - now)
                await asyncio.sleep(pause)
                delay = min(delay * 2, self._retry[1])
        finally:
            LOCK_WAIT_SECONDS.labels(self._service).observe(loop.time() - started)
        LOCK_ACQUISITIONS.labels(self._service, "acquired").inc()
        return self.fencing_token

    async def extend(self, ttl: float | None = None) -> None:
        """Reset the lease to ``ttl`` (default: the lock's); raise :class:`LockNotHeld` if lost."""
        if self._token is None:
            raise LockNotHeld(f"{self.key} is not held by this object")
        ttl = self.ttl if ttl is None else ttl
        started = asyncio.get_running_loop().time()
        ok = await self._scripts.extend(
            keys=[self.key], args=[self._token, max(1, int(ttl * 1000))], client=self._client
        )
        if not ok:
            raise LockNotHeld(f"{self.key} is held by someone else or expired")
        self._expires_at = started + ttl

    async def release(self) -> bool:
        """Give the lease back; ``False`` if it was no longer ours (expired or taken)."""
        if self._token is None:
            raise LockNotHeld(f"{self.key} is not held by this object")
        token, self._token = self._token, None
        released = await self._scripts.release(keys=[self.key], args=[token], client=self._client)
        return bool(released)

    async def _keep_alive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.ttl / 3)
            while True:
                remaining = self._expires_at - loop.time()
                if remaining <= 0:
                    self._lose()
                    return
                try:
                    async with asyncio.timeout(remaining):
                        await self.extend()
                    break
                except LockNotHeld:
                    self._lose()
                    return
                except (RedisError, OSError, TimeoutError):
                    # Redis unreachable: keep trying until the lease must be assumed gone.
                    await asyncio.sleep(min(0.05, max(0.0, remaining / 4)))

    def _lose(self) -> None:
        LOCK_LOSSES.labels(self._service).inc()
        self.lost.set()
        if self._owner is not None and not self._closing:
            self._cancelled_owner = True
            self._owner.cancel(f"lease on {self.key} lost")

    async def __aenter__(self) -> RedisLock:
        await self.acquire()
        self._owner = asyncio.current_task()
        if self._owner is not None:
            self._owner_cancelling = self._owner.cancelling()
        if self.renew:
            self._renewal = asyncio.create_task(self._keep_alive(), name=f"renew {self.key}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Set first, synchronously: from here on the renewal task may no longer cancel us.
        self._closing = True
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        lost = self.lost.is_set()
        with contextlib.suppress(RedisError, OSError, LockNotHeld):
            await self.release()
        if not lost:
            return
        external = False
        if self._cancelled_owner and self._owner is not None:
            # Our cancel was consumed by the block; anything left is someone else's cancellation.
            external = self._owner.uncancel() > self._owner_cancelling
        if external and exc_type is asyncio.CancelledError:
            return
        raise LockLost(f"lease on {self.key} was lost while held") from exc


__all__ = [
    "LockError",
    "LockLost",
    "LockNotAcquired",
    "LockNotHeld",
    "RedisLock",
]
