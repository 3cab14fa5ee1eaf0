"""Password hashing with Argon2id (argon2-cffi), with rehash detection and a dummy verify.

Default parameters are argon2-cffi's, which are RFC 9106's "low memory" profile: time cost 3,
memory 64 MiB, parallelism 4, 16-byte salt, 32-byte hash. Settings may change them; a hash made
with other parameters is replaced on the next successful login (``needs_rehash``).

Each hash needs ``memory_cost`` KiB while it runs, so a burst of logins could need more memory than
the container has: the ``*_async`` methods run at most ``memory_budget // memory_cost`` hashes at
a time (in threads: argon2-cffi releases the GIL) and queue the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from prometheus_client import Gauge

T = TypeVar("T")

HASH_SLOTS: Final = Gauge(
    "parley_auth_password_hash_slots", "Password hashes allowed to run at once (memory bound)."
)
HASHES_RUNNING: Final = Gauge("parley_auth_password_hashes", "Password hashes running now.")
HASHES_PEAK: Final = Gauge(
    "parley_auth_password_hashes_peak", "Most password hashes that ran at once since the start."
)


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """Argon2id cost parameters (``memory_cost`` in KiB)."""

    time_cost: int = 3
    memory_cost: int = 65536
    parallelism: int = 4

    def describe(self) -> str:
        """A one-line summary for logs and benchmark tables."""
        return f"argon2id t={self.time_cost} m={self.memory_cost}KiB p={self.parallelism}"


class PasswordHasher:
    """Hashes and verifies passwords; :meth:`verify_unknown` spends the same work on no account."""

    def __init__(
        self, parameters: Argon2Parameters | None = None, *, memory_budget: int | None = None
    ) -> None:
        """``memory_budget`` (KiB, default: four hashes' worth) bounds the async methods."""
        self.parameters = parameters or Argon2Parameters()
        p = self.parameters
        budget = 4 * p.memory_cost if memory_budget is None else memory_budget
        self.slots = max(1, budget // p.memory_cost)
        self._gate = asyncio.Semaphore(self.slots)
        self._running = 0
        self.peak = 0
        HASH_SLOTS.set(self.slots)
        self._argon2 = _Argon2(
            time_cost=p.time_cost,
            memory_cost=p.memory_cost,
            parallelism=p.parallelism,
            type=Type.ID,
        )
        # A hash of a random password under the current parameters: verifying against it costs
        # what a real verify costs, so an unknown username answers as slowly as a wrong password.
        self._dummy = self._argon2.hash("parley-dummy-password-for-unknown-users")

    def hash(self, password: str) -> str:
        """The encoded Argon2id hash (salt and parameters included)."""
        return self._argon2.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash`` (False for a corrupt hash too)."""
        try:
            return self._argon2.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_unknown(self, password: str) -> None:
        """Spend one verify's work for a username that has no account; always fails."""
        self.verify(self._dummy, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether ``password_hash`` was made with other parameters than the current ones."""
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    async def hash_async(self, password: str) -> str:
        """:meth:`hash` in a thread, within the memory bound."""
        return await self._bounded(self.hash, password)

    async def verify_async(self, password_hash: str, password: str) -> bool:
        """:meth:`verify` in a thread, within the memory bound."""
        return await self._bounded(self.verify, password_hash, password)

    async def verify_unknown_async(self, password: str) -> None:
        """:meth:`verify_unknown` in a thread, within the memory bound."""
        await self._bounded(self.verify_unknown, password)

    async def _bounded(self, work: Callable[..., T], *args: str) -> T:
        async with self._gate:
            self._running += 1
            self.peak = max(self.peak, self._running)
            HASHES_RUNNING.set(self._running)
            HASHES_PEAK.set(self.peak)
            try:
                return await asyncio.to_thread(work, *args)
            finally:
                self._running -= 1
                HASHES_RUNNING.set(self._running)
