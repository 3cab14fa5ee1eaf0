"""Access tokens: EdDSA (Ed25519) JWTs via PyJWT, signing keys with ids, strict verification.

A token carries ``iss``, ``aud``, ``sub`` (user id), ``sid`` (session handle), ``roles``, ``iat``,
``exp`` and ``jti``; its header names the key (``kid``). Verification accepts only ``EdDSA``
(so ``alg: none`` and algorithm confusion are refused before any key is touched), only a key id
it knows and that has not passed its ``not_after``, and only the configured audience and issuer.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from auth.domain.errors import InvalidToken

ALGORITHM = "EdDSA"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 key pair with its id: active, then retired, then gone at ``not_after``."""

    kid: str
    public: Ed25519PublicKey
    private: Ed25519PrivateKey | None
    created_at: datetime
    retired_at: datetime | None = None
    not_after: datetime | None = None

    @classmethod
    def generate(cls, *, now: datetime) -> SigningKey:
        """A fresh key pair whose id names its creation day plus 64 random bits."""
        private = Ed25519PrivateKey.generate()
        kid = f"{now:%Y%m%d}-{secrets.token_hex(8)}"
        return cls(kid=kid, public=private.public_key(), private=private, created_at=now)

    @classmethod
    def from_public(cls, kid: str, x: str, *, created_at: datetime) -> SigningKey:
        """A verification-only key from its JWK ``x`` value."""
        return cls(
            kid=kid,
            public=Ed25519PublicKey.from_public_bytes(_unb64(x)),
            private=None,
            created_at=created_at,
        )

    @property
    def x(self) -> str:
        """The raw public key, base64url (the JWK ``x`` member)."""
        return _b64(self.public.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def verifies_at(self, now: datetime) -> bool:
        """Whether tokens signed by this key may still be accepted at ``now``."""
        return self.not_after is None or now < self.not_after


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: str
    session_id: str
    roles: tuple[str, ...]
    kid: str
    issued_at: datetime
    expires_at: datetime
    token_id: str


class TokenCodec:
    """Issues and verifies access tokens for one issuer and audience."""

    def __init__(self, *, issuer: str, audience: str, lifetime: int, leeway: float = 5.0) -> None:
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
        self.leeway = leeway

    def issue(
        self,
        key: SigningKey,
        *,
        user_id: str,
        session_id: str,
        roles: tuple[str, ...],
        now: datetime,
    ) -> str:
        """A signed token valid from ``now`` for :attr:`lifetime` seconds."""
        if key.private is None:
            raise ValueError(f"key {key.kid} cannot sign (no private key)")
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "sid": session_id,
            "roles": list(roles),
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self.lifetime)).timestamp()),
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})

    def verify(self, token: str, keys: Mapping[str, SigningKey], *, now: datetime) -> AccessClaims:
        """The claims of a valid token, else :class:`InvalidToken` saying why (for logs only)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise InvalidToken("malformed token") from e
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        key = keys.get(str(header.get("kid")))
        if key is None or not key.verifies_at(now):
            raise InvalidToken("unknown or expired key id")
        try:
            claims = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "sid", "aud", "iss", "jti"]},
            )
        except jwt.PyJWTError as e:
            raise InvalidToken(type(e).__name__) from e
        return AccessClaims(
            user_id=str(claims["sub"]),
            session_id=str(claims["sid"]),
            roles=tuple(str(r) for r in claims.get("roles", [])),
            kid=key.kid,
            issued_at=datetime.fromtimestamp(claims["iat"], tz=now.tzinfo),
            expires_at=datetime.fromtimestamp(claims["exp"], tz=now.tzinfo),
            token_id=str(claims["jti"]),
        )
