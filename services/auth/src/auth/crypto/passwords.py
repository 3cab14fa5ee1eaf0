"""Password hashing with Argon2id (argon2-cffi), with rehash detection and a dummy verify.

Default parameters are argon2-cffi's, which are RFC 9106's "low memory" profile: time cost 3,
memory 64 MiB, parallelism 4, 16-byte salt, 32-byte hash. Settings may change them; a hash made
with other parameters is replaced on the next successful login (``needs_rehash``).
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


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

    def __init__(self, parameters: Argon2Parameters | None = None) -> None:
        self.parameters = parameters or Argon2Parameters()
        p = self.parameters
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
