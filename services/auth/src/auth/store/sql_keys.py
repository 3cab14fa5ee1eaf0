"""Signing keys in SQL; private halves sealed with a sub-key of the key-encryption key."""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.crypto.sealing import Sealer
from auth.crypto.tokens import ALGORITHM, SigningKey
from auth.store.sql_accounts import as_utc
from auth.store.tables import signing_keys


class SqlSigningKeys:
    """The signing-key store on one connection (the unit of work's transaction)."""

    def __init__(self, conn: AsyncConnection, sealer: Sealer) -> None:
        self._conn = conn
        self._sealer = sealer

    async def all(self) -> list[SigningKey]:
        """Every stored key, newest first."""
        query = select(signing_keys).order_by(signing_keys.c.created_at.desc())
        rows = (await self._conn.execute(query)).all()
        keys = []
        for row in rows:
            m = row._mapping
            raw = self._sealer.open(bytes(m["private_key"]), binding=m["kid"])
            private = Ed25519PrivateKey.from_private_bytes(raw)
            keys.append(
                SigningKey(
                    kid=m["kid"],
                    public=private.public_key(),
                    private=private,
                    created_at=as_utc(m["created_at"]),
                    retired_at=None if m["retired_at"] is None else as_utc(m["retired_at"]),
                    not_after=None if m["not_after"] is None else as_utc(m["not_after"]),
                )
            )
        return keys

    async def add(self, key: SigningKey) -> None:
        """Store a new key with its sealed private half."""
        if key.private is None:
            raise ValueError("only keys with a private half are stored")
        raw = key.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        await self._conn.execute(
            insert(signing_keys).values(
                kid=key.kid,
                algorithm=ALGORITHM,
                public_key=key.x,
                private_key=self._sealer.seal(raw, binding=key.kid),
                created_at=key.created_at,
                retired_at=key.retired_at,
                not_after=key.not_after,
            )
        )

    async def retire(self, kid: str, *, retired_at: datetime, not_after: datetime) -> None:
        """Mark a key retired (signs no more; verifies until ``not_after``)."""
        await self._conn.execute(
            update(signing_keys)
            .where(signing_keys.c.kid == kid, signing_keys.c.retired_at.is_(None))
            .values(retired_at=retired_at, not_after=not_after)
        )

    async def purge(self, *, before: datetime) -> int:
        """Delete keys no token can need any more."""
        result = await self._conn.execute(
            delete(signing_keys).where(signing_keys.c.not_after < before)
        )
        return int(result.rowcount or 0)
