"""Sessions and refresh-token families on the shared encrypted :class:`SessionStore`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

from auth.domain.sessions import RefreshFamily
from auth.store.protocols import StoredSession
from shared.keys import KeySpace
from shared.locks import RedisLock
from shared.redis.client import AnyRedis
from shared.sessions import Keyring, Session, SessionStore


def _stored(session: Session[RefreshFamily]) -> StoredSession:
    return StoredSession(
        handle=session.handle,
        user_id=session.user_id,
        family=session.data,
        created_at=session.created_at,
        expires_at=session.expires_at,
        secret_id=session.id,
    )


class RedisSessions:
    """Sessions in Redis: ``idle_ttl`` slides on each refresh, ``max_lifetime`` caps a session."""

    def __init__(
        self,
        client: AnyRedis,
        keyspace: KeySpace,
        keyring: Keyring,
        *,
        idle_ttl: float,
        max_lifetime: float,
    ) -> None:
        self._client = client
        self._keyspace = keyspace
        self._store = SessionStore(
            client,
            keyspace,
            keyring,
            data_type=RefreshFamily,
            idle_ttl=idle_ttl,
            max_lifetime=max_lifetime,
        )

    async def create(self, user_id: str, family: RefreshFamily) -> StoredSession:
        """Start a session; the result carries its secret id."""
        return _stored(await self._store.create(user_id, family))

    async def get(self, secret_id: str, *, touch: bool) -> StoredSession | None:
        """The live session, sliding its idle expiry when ``touch``."""
        session = await self._store.get(secret_id, touch=touch)
        return None if session is None else _stored(session)

    async def replace(self, secret_id: str, family: RefreshFamily) -> bool:
        """Store a rotated family, keeping the session's expiry."""
        return await self._store.update(secret_id, family)

    async def live(self, user_id: str, handle: str) -> bool:
        """Whether the session with this handle is live."""
        return await self._store.live(user_id, handle)

    async def revoke(self, user_id: str, handle: str) -> bool:
        """End one session by handle."""
        return await self._store.revoke_handle(user_id, handle)

    async def list(self, user_id: str) -> Sequence[StoredSession]:
        """The live sessions of a user, oldest first."""
        return [_stored(s) for s in await self._store.list(user_id)]

    def exclusive(self, handle: str) -> AbstractAsyncContextManager[object]:
        """The fleet-wide rotation lock of one session (short lease: a refresh is quick)."""
        return RedisLock(self._client, self._keyspace, f"refresh:{handle}", ttl=5.0, timeout=5.0)
