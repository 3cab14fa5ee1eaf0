"""The session store: encrypted session data in Redis with sliding and absolute expiry.

A session id looks like ``<user digest>.<43 random urlsafe chars>`` (256 random bits). The user
digest picks the hash tag ``{user:<digest>}`` so a user's sessions and their index share one
slot, and a lookup needs only the id. Redis never sees the id itself: keys and index members use
its *handle*, a hash of the id, so reading Redis does not hand out bearer tokens.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any, Final, Generic, TypeVar

import msgspec
from prometheus_client import Counter
from redis.commands.core import AsyncScript

from shared.keys import KeySpace, same_slot
from shared.redis.client import AnyRedis
from shared.sessions import scripts
from shared.sessions.keyring import Keyring, SessionCryptoError, SessionError

T = TypeVar("T")

SESSION_CREATES: Final = Counter("parley_session_creates_total", "Sessions created.", ["service"])
SESSION_REVOKES: Final = Counter(
    "parley_session_revokes_total",
    "Sessions revoked, by scope (one: a single session, user: all of a user's).",
    ["service", "scope"],
)
SESSION_DECRYPT_FAILURES: Final = Counter(
    "parley_session_decrypt_failures_total",
    "Stored sessions that failed to decrypt or decode (tampered, foreign, unknown key).",
    ["service"],
)

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$")
_REVOKE_BATCH = 256


class _Payload(msgspec.Struct, Generic[T], array_like=True, frozen=True):
    user_id: str
    created_at: float
    data: T


@dataclass(frozen=True, slots=True)
class Session(Generic[T]):
    """One session as read from the store."""

    handle: str
    """A non-secret name of the session (a hash of its id), e.g. to revoke it from a device list."""
    user_id: str
    data: T
    created_at: float
    """Unix seconds, by the clock of the instance that created it."""
    expires_at: float
    """The absolute end of its life (unix seconds, Redis clock); idle expiry may come sooner."""
    key_id: str
    """The key that sealed it."""
    id: str | None = None
    """The secret session id; ``None`` when listed (the store keeps only the handle)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def user_digest(user_id: str) -> str:
    """The 16-character digest of a user id that names the user's slot."""
    return _b64(
        hashlib.blake2b(user_id.encode(), digest_size=12, person=b"parley-session").digest()
    )


def session_handle(session_id: str) -> str:
    """The non-secret handle of a session id (what Redis stores instead of the id)."""
    return _b64(hashlib.blake2b(session_id.encode(), digest_size=16).digest())


class SessionStore(Generic[T]):
    """Sessions of ``data_type`` values for one service.

    ``idle_ttl``: a session not touched for this long ends; ``max_lifetime``: no session lives
    longer, however often it is touched (seconds).
    """

    def __init__(
        self,
        client: AnyRedis,
        keyspace: KeySpace,
        keyring: Keyring,
        *,
        data_type: type[T],
        idle_ttl: float = 1800.0,
        max_lifetime: float = 86400.0 * 7,
    ) -> None:
        if idle_ttl <= 0 or max_lifetime <= 0:
            raise ValueError("idle_ttl and max_lifetime must be positive")
        self._client = client
        self._keyspace = keyspace
        self.keyring = keyring
        self._idle_ms = int(idle_ttl * 1000)
        self._max_ms = int(max_lifetime * 1000)
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(_Payload[data_type])  # type: ignore[valid-type]
        self._scripts = {
            name: client.register_script(source) for name, source in scripts.ALL.items()
        }
        service = keyspace.prefix
        self._creates = SESSION_CREATES.labels(service)
        self._revokes_one = SESSION_REVOKES.labels(service, "one")
        self._revokes_user = SESSION_REVOKES.labels(service, "user")
        self._decrypt_failures = SESSION_DECRYPT_FAILURES.labels(service)

    # ------------------------------------------------------------------ keys

    def _keys(self, digest: str, handle: str) -> tuple[str, str]:
        tag = f"user:{digest}"
        session_key = self._keyspace.key("session", tag=tag, rest=handle)
        index_key = self._keyspace.key("session", tag=tag, rest="index")
        same_slot(session_key, index_key)
        return session_key, index_key

    def _index_key(self, user_id: str) -> str:
        return self._keyspace.key("session", tag=f"user:{user_digest(user_id)}", rest="index")

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script: AsyncScript = self._scripts[name]
        return await script(keys=keys, args=args, client=self._client)

    # ------------------------------------------------------------------ operations

    async def create(self, user_id: str, data: T) -> Session[T]:
        """Start a session for ``user_id`` holding ``data``; the result carries the secret id."""
        digest = user_digest(user_id)
        session_id = f"{digest}.{secrets.token_urlsafe(32)}"
        handle = session_handle(session_id)
        created_at = time.time()
        payload = self._encoder.encode(_Payload(user_id=user_id, created_at=created_at, data=data))
        sealed = self.keyring.seal(payload, binding=handle)
        deadline_ms = await self._run(
            "create",
            list(self._keys(digest, handle)),
            [sealed, handle, self._idle_ms, self._max_ms],
        )
        self._creates.inc()
        return Session(
            handle=handle,
            user_id=user_id,
            data=data,
            created_at=created_at,
            expires_at=int(deadline_ms) / 1000,
            key_id=self.keyring.current,
            id=session_id,
        )

    async def get(self, session_id: str, *, touch: bool = False) -> Session[T] | None:
        """The live session ``session_id``, or ``None`` (unknown, expired, revoked or tampered).

        ``touch=True`` also slides its idle expiry (capped by its absolute lifetime).
        """
        if not _SESSION_ID.match(session_id):
            return None
        handle = session_handle(session_id)
        keys = list(self._keys(session_id.split(".", 1)[0], handle))
        found = await self._run("get", keys, [handle, self._idle_ms, int(touch)])
        if not found:
            return None
        session = self._open(handle, found[0], int(found[1]))
        if session is None:
            return None
        return replace(session, id=session_id)

    async def touch(self, session_id: str) -> bool:
        """Slide the idle expiry of a live session; ``False`` if there is none."""
        return await self.get(session_id, touch=True) is not None

    async def update(self, session_id: str, data: T) -> bool:
        """Replace a live session's data (sealed with the current key), keeping its expiry."""
        session = await self.get(session_id)
        if session is None:
            return False
        payload = _Payload(user_id=session.user_id, created_at=session.created_at, data=data)
        sealed = self.keyring.seal(self._encoder.encode(payload), binding=session.handle)
        session_key, _ = self._keys(session_id.split(".", 1)[0], session.handle)
        return bool(await self._client.set(session_key, sealed, xx=True, keepttl=True))

    async def revoke(self, session_id: str) -> bool:
        """End one session now; ``False`` if it was not live."""
        if not _SESSION_ID.match(session_id):
            return False
        handle = session_handle(session_id)
        keys = list(self._keys(session_id.split(".", 1)[0], handle))
        deleted = int(await self._run("revoke", keys, [handle]))
        if deleted:
            self._revokes_one.inc()
        return bool(deleted)

    async def live(self, user_id: str, handle: str) -> bool:
        """Whether one of ``user_id``'s sessions, named by its handle, is live (not ended)."""
        session_key, _ = self._keys(user_digest(user_id), handle)
        return bool(await self._client.exists(session_key))

    async def revoke_handle(self, user_id: str, handle: str) -> bool:
        """End one of ``user_id``'s sessions by its handle (e.g. picked from a device list)."""
        keys = list(self._keys(user_digest(user_id), handle))
        deleted = int(await self._run("revoke", keys, [handle]))
        if deleted:
            self._revokes_one.inc()
        return bool(deleted)

    async def revoke_all(self, user_id: str) -> int:
        """End every session of ``user_id``, including any created while this runs; return count."""
        digest = user_digest(user_id)
        index_key = self._index_key(user_id)
        revoked = 0
        while True:
            members = await self._client.zrange(index_key, 0, _REVOKE_BATCH - 1)
            if not members:
                break
            handles = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
            session_keys = [self._keys(digest, h)[0] for h in handles]
            same_slot(index_key, *session_keys)
            revoked += int(await self._run("revoke_many", [index_key, *session_keys], handles))
        self._revokes_user.inc(revoked)
        return revoked

    async def list(self, user_id: str) -> list[Session[T]]:
        """The live sessions of ``user_id`` (without their secret ids), oldest first."""
        digest = user_digest(user_id)
        index_key = self._index_key(user_id)
        members: list[Any] = await self._client.zrange(index_key, 0, -1, withscores=True)
        if not members:
            return []
        handles = [(m.decode() if isinstance(m, bytes) else str(m), int(s)) for m, s in members]
        keys = [self._keys(digest, h)[0] for h, _ in handles]
        values: list[Any] = await self._client.mget(keys)
        sessions: list[Session[T]] = []
        gone: list[str] = []
        for (handle, deadline_ms), value in zip(handles, values, strict=True):
            session = None if value is None else self._open(handle, value, deadline_ms)
            if value is None:
                gone.append(handle)  # idled out: drop it from the index as we go
            elif session is not None and session.user_id == user_id:
                sessions.append(session)
        if gone:
            await self._client.zrem(index_key, *gone)
        return sorted(sessions, key=lambda s: s.created_at)

    # ------------------------------------------------------------------ decoding

    def _open(self, handle: str, sealed: bytes, deadline_ms: int) -> Session[T] | None:
        try:
            payload: _Payload[T] = self._decoder.decode(self.keyring.open(sealed, binding=handle))
            key_id = self.keyring.key_id_of(sealed)
        except (SessionCryptoError, msgspec.DecodeError):
            self._decrypt_failures.inc()
            return None
        return Session(
            handle=handle,
            user_id=payload.user_id,
            data=payload.data,
            created_at=payload.created_at,
            expires_at=deadline_ms / 1000,
            key_id=key_id,
        )


__all__ = ["Session", "SessionError", "SessionStore", "session_handle", "user_digest"]
