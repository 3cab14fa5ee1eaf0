"""Fixtures of the auth service's tests: in-memory fakes of its ports, and fast Argon2 settings."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime

import pytest

from auth.crypto.passwords import Argon2Parameters, PasswordHasher
from auth.crypto.tokens import SigningKey, TokenCodec
from auth.domain.accounts import Account, normalize_username
from auth.domain.errors import UsernameTaken
from auth.domain.events import DomainEvent
from auth.domain.permissions import Grants
from auth.domain.sessions import RefreshFamily
from auth.handlers.accounts import AccountService
from auth.handlers.keys import SigningKeys
from auth.handlers.login import LoginService
from auth.handlers.permissions import PermissionService
from auth.handlers.sessions import SessionService
from auth.store.protocols import GrantsLoader, StoredSession, Throttle

FAST_ARGON2 = Argon2Parameters(time_cost=1, memory_cost=8, parallelism=1)


@dataclass
class FakeDb:
    """The committed state the fake units of work share."""

    accounts: dict[str, Account] = field(default_factory=dict)
    inbox: dict[str, bytes] = field(default_factory=dict)
    keys: dict[str, SigningKey] = field(default_factory=dict)


class FakeAccounts:
    def __init__(self, accounts: dict[str, Account]) -> None:
        self._accounts = accounts

    async def add(self, account: Account) -> None:
        if any(a.username_key == account.username_key for a in self._accounts.values()):
            raise UsernameTaken("this username is taken")
        self._accounts[account.user_id] = account

    async def by_id(self, user_id: str) -> Account | None:
        return self._accounts.get(user_id)

    async def by_username(self, username: str) -> Account | None:
        key = normalize_username(username)
        return next((a for a in self._accounts.values() if a.username_key == key), None)

    async def save(self, account: Account) -> None:
        self._accounts[account.user_id] = account


class FakeInbox:
    def __init__(self, inbox: dict[str, bytes]) -> None:
        self._inbox = inbox

    async def reply_of(self, message_id: str) -> bytes | None:
        return self._inbox.get(message_id)

    async def record(self, message_id: str, reply: bytes = b"") -> None:
        if message_id in self._inbox:
            raise RuntimeError("duplicate message id")
        self._inbox[message_id] = reply


class RecordingEvents:
    """The events of committed units of work, in commit order."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []


class FakeUnitOfWork:
    """Works on copies; commit publishes them to the shared FakeDb and records the events."""

    def __init__(self, db: FakeDb, recorded: RecordingEvents) -> None:
        self._db = db
        self._recorded = recorded

    async def __aenter__(self) -> FakeUnitOfWork:
        self._accounts = dict(self._db.accounts)
        self._inbox = dict(self._db.inbox)
        self._keys = dict(self._db.keys)
        self.accounts = FakeAccounts(self._accounts)
        self.inbox = FakeInbox(self._inbox)
        self.signing_keys = FakeKeyStore(self._keys)
        self.events: list[DomainEvent] = []
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def commit(self) -> None:
        self._db.accounts, self._db.inbox = dict(self._accounts), dict(self._inbox)
        self._db.keys = dict(self._keys)
        self._recorded.events.extend(self.events)
        self.events = []


class FakeKeyStore:
    def __init__(self, keys: dict[str, SigningKey]) -> None:
        self.keys = keys

    async def all(self) -> list[SigningKey]:
        return sorted(self.keys.values(), key=lambda k: k.created_at, reverse=True)

    async def add(self, key: SigningKey) -> None:
        self.keys[key.kid] = key

    async def retire(self, kid: str, *, retired_at: datetime, not_after: datetime) -> None:
        self.keys[kid] = replace(self.keys[kid], retired_at=retired_at, not_after=not_after)

    async def purge(self, *, before: datetime) -> int:
        gone = [k for k, v in self.keys.items() if v.not_after is not None and v.not_after < before]
        for kid in gone:
            del self.keys[kid]
        return len(gone)


class FakeSessions:
    def __init__(self) -> None:
        self.by_secret: dict[str, StoredSession] = {}
        self.failing_revocations = 0

    async def create(self, user_id: str, family: RefreshFamily) -> StoredSession:
        secret = f"{secrets.token_urlsafe(12)[:16]}.{secrets.token_urlsafe(32)}"
        handle = secrets.token_urlsafe(16)
        now = time.time()
        s = StoredSession(handle, user_id, family, now, now + 3600, secret_id=secret)
        self.by_secret[secret] = s
        return s

    async def get(self, secret_id: str, *, touch: bool) -> StoredSession | None:
        return self.by_secret.get(secret_id)

    async def replace(self, secret_id: str, family: RefreshFamily) -> bool:
        if secret_id not in self.by_secret:
            return False
        self.by_secret[secret_id] = replace(self.by_secret[secret_id], family=family)
        return True

    async def live(self, user_id: str, handle: str) -> bool:
        return any(s.handle == handle and s.user_id == user_id for s in self.by_secret.values())

    async def revoke(self, user_id: str, handle: str) -> bool:
        if self.failing_revocations:  # Redis went away, or the process died here
            self.failing_revocations -= 1
            raise ConnectionError("the session store is unreachable")
        for secret, s in list(self.by_secret.items()):
            if s.handle == handle and s.user_id == user_id:
                del self.by_secret[secret]
                return True
        return False

    async def list(self, user_id: str) -> Sequence[StoredSession]:
        return sorted(
            (replace(s, secret_id=None) for s in self.by_secret.values() if s.user_id == user_id),
            key=lambda s: s.created_at,
        )

    def exclusive(self, handle: str) -> AbstractAsyncContextManager[object]:
        return contextlib.nullcontext()


class FakeGuard:
    """Counts failures per username; refuses from the ``threshold``-th on."""

    def __init__(self, threshold: int = 10) -> None:
        self.threshold = threshold
        self.failures: dict[str, int] = {}

    async def reserve(self, username_key: str, address: str | None) -> Throttle:
        if self.failures.get(username_key, 0) >= self.threshold:
            return Throttle(allowed=False, retry_after=60.0)
        return Throttle(allowed=True)

    async def settle(self, username_key: str, address: str | None, *, ok: bool) -> Throttle:
        if ok:
            self.failures.pop(username_key, None)
            return Throttle(allowed=True)
        self.failures[username_key] = self.failures.get(username_key, 0) + 1
        return await self.reserve(username_key, address)


class FakePermissionCache:
    def __init__(self) -> None:
        self.entries: dict[str, Grants | None] = {}

    async def grants(self, user_id: str, load: GrantsLoader) -> Grants | None:
        if user_id not in self.entries:
            self.entries[user_id] = await load()
        return self.entries[user_id]

    async def forget(self, user_id: str) -> None:
        self.entries.pop(user_id, None)


@dataclass
class FakeAuth:
    """The handlers wired on fakes."""

    db: FakeDb
    events: RecordingEvents
    sessions_store: FakeSessions
    guard: FakeGuard
    hasher: PasswordHasher
    keys: SigningKeys
    sessions: SessionService
    accounts: AccountService
    login: LoginService
    permissions: PermissionService


@pytest.fixture
async def fake_auth() -> FakeAuth:
    db = FakeDb()
    events = RecordingEvents()

    def uow() -> FakeUnitOfWork:
        return FakeUnitOfWork(db, events)

    store = FakeSessions()
    guard = FakeGuard()
    hasher = PasswordHasher(FAST_ARGON2)
    codec = TokenCodec(issuer="parley-auth", audience="parley", lifetime=600)
    keys = SigningKeys(uow, codec=codec, rotate_after=86400.0)
    await keys.ensure_active()
    events.events.clear()
    sessions = SessionService(store, keys, uow)
    permissions = PermissionService(uow, FakePermissionCache())
    return FakeAuth(
        db=db,
        events=events,
        sessions_store=store,
        guard=guard,
        hasher=hasher,
        keys=keys,
        sessions=sessions,
        accounts=AccountService(uow, hasher, sessions, permissions, guard),
        login=LoginService(uow, hasher, guard, sessions),
        permissions=permissions,
    )
