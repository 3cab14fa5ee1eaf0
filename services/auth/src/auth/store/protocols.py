"""What the handlers need from storage; ``sql_*`` and ``redis_*`` modules implement these.

Handlers depend on these protocols only, so unit tests run them on in-memory fakes and the
integration tests run the same behaviour on SQLite, PostgreSQL and the Redis test cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from auth.crypto.tokens import SigningKey
from auth.domain.accounts import Account
from auth.domain.events import DomainEvent
from auth.domain.permissions import Grants
from auth.domain.sessions import RefreshFamily


class AccountRepository(Protocol):
    """Accounts in the service's database (inside a unit of work)."""

    async def add(self, account: Account) -> None:
        """Insert; raises :class:`~auth.domain.errors.UsernameTaken` on a duplicate username."""
        ...

    async def by_id(self, user_id: str) -> Account | None:
        """The account with this id, if any."""
        ...

    async def by_username(self, username: str) -> Account | None:
        """The account with this username, compared case-insensitively."""
        ...

    async def save(self, account: Account) -> None:
        """Write back the hash, roles and timestamps of an existing account."""
        ...


class Inbox(Protocol):
    """Ids of handled commands and their replies, written with the effect of the command."""

    async def reply_of(self, message_id: str) -> bytes | None:
        """The stored reply of a handled message (``b""`` when it stored none), else None."""
        ...

    async def record(self, message_id: str, reply: bytes = b"") -> None:
        """Mark ``message_id`` handled, keeping ``reply`` (sealed at rest by the store)."""
        ...


class UnitOfWork(Protocol):
    """One database transaction over the repositories; rolled back unless committed.

    Domain events appended to :attr:`events` inside the block are stored by :meth:`commit` in the
    same transaction as the change they announce (the outbox), and appended to the bus when the
    block exits. A unit of work that is not committed announces nothing.
    """

    @property
    def accounts(self) -> AccountRepository:
        """The accounts, in this transaction."""
        ...

    @property
    def inbox(self) -> Inbox:
        """The processed-message inbox, in this transaction."""
        ...

    @property
    def signing_keys(self) -> SigningKeyStore:
        """The signing keys, in this transaction."""
        ...

    @property
    def events(self) -> list[DomainEvent]:
        """Events to announce once this unit commits (append before :meth:`commit`)."""
        ...

    async def commit(self) -> None:
        """Make everything done in this unit durable, its events included."""
        ...

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(self, *exc: object) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Opens a new unit of work."""

    def __call__(self) -> UnitOfWork: ...


class SigningKeyStore(Protocol):
    """Signing keys in the service's database (inside a unit of work), private halves sealed."""

    async def all(self) -> list[SigningKey]:
        """Every stored key, newest first."""
        ...

    async def add(self, key: SigningKey) -> None:
        """Store a new key (with its private half)."""
        ...

    async def retire(self, kid: str, *, retired_at: datetime, not_after: datetime) -> None:
        """Mark a key retired: it signs no more and verifies until ``not_after``."""
        ...

    async def purge(self, *, before: datetime) -> int:
        """Delete keys whose ``not_after`` is before ``before``; returns how many."""
        ...


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A session as the session store returns it."""

    handle: str
    user_id: str
    family: RefreshFamily
    created_at: float
    expires_at: float
    secret_id: str | None = None


class SessionRepository(Protocol):
    """Sessions and their refresh-token families, encrypted in Redis."""

    async def create(self, user_id: str, family: RefreshFamily) -> StoredSession:
        """Start a session; the result carries its secret id."""
        ...

    async def get(self, secret_id: str, *, touch: bool) -> StoredSession | None:
        """The live session with this secret id; ``touch`` slides its idle expiry."""
        ...

    async def replace(self, secret_id: str, family: RefreshFamily) -> bool:
        """Store a rotated family; False when the session is gone."""
        ...

    async def live(self, user_id: str, handle: str) -> bool:
        """Whether the session with this handle is live (not ended, not expired)."""
        ...

    async def revoke(self, user_id: str, handle: str) -> bool:
        """End one session by its handle; False when it was not live."""
        ...

    async def list(self, user_id: str) -> Sequence[StoredSession]:
        """The live sessions of a user, oldest first."""
        ...

    def exclusive(self, handle: str) -> AbstractAsyncContextManager[object]:
        """Hold the session's rotation lock (one refresh of a family at a time, fleet-wide)."""
        ...


@dataclass(frozen=True, slots=True)
class Throttle:
    """Whether a login may proceed; ``retry_after`` seconds when it may not."""

    allowed: bool
    retry_after: float = 0.0


class LoginGuard(Protocol):
    """Password-check budgets per (username, address), per address and per username (Redis).

    A check first *reserves* a failure (atomically: parallel checks cannot overspend a budget),
    then the outcome *settles* it: a success gives it back, a failure that spent the pair's
    budget locks that pair out.
    """

    async def reserve(self, username_key: str, address: str | None) -> Throttle:
        """Whether a password check may run now; when it may, one failure is counted ahead."""
        ...

    async def settle(self, username_key: str, address: str | None, *, ok: bool) -> Throttle:
        """The check's outcome; not allowed when this failure spent a budget (a lockout began)."""
        ...


class PermissionCache(Protocol):
    """Cache-aside of users' grants, dropped when their roles change."""

    async def grants(self, user_id: str, load: GrantsLoader) -> Grants | None:
        """The cached grants of ``user_id``, loading through ``load`` on a miss."""
        ...

    async def forget(self, user_id: str) -> None:
        """Drop ``user_id``'s cached grants."""
        ...


class GrantsLoader(Protocol):
    """Loads a user's grants from the database (None: no such user)."""

    async def __call__(self) -> Grants | None: ...
