"""Domain events -> the wire messages of ``auth.events``.

The unit of work (``store/sql_unit_of_work.py``) stores each event in the outbox with the change
it announces and appends it after the commit; bootstrap hands it :func:`to_contract`.
"""

from __future__ import annotations

from auth.domain import events
from contracts import auth as wire
from contracts.base import Event


def to_contract(event: events.DomainEvent) -> Event:
    """The wire message of a domain event."""
    match event:
        case events.AccountRegistered():
            return wire.AccountRegistered(
                user_id=event.user_id,
                username=event.username,
                display_name=event.display_name,
                roles=list(event.roles),  # type: ignore[arg-type]
            )
        case events.PasswordChanged():
            return wire.PasswordChanged(user_id=event.user_id)
        case events.SessionRevoked():
            return wire.SessionRevoked(
                user_id=event.user_id,
                session_id=event.session_id,
                reason=event.reason,
                tokens_expire_at=event.tokens_expire_at,
            )
        case events.RoleChanged():
            return wire.RoleChanged(user_id=event.user_id, roles=list(event.roles))  # type: ignore[arg-type]
        case events.SigningKeysRotated():
            return wire.SigningKeysRotated(keys=[public_key(k) for k in event.keys])


def public_key(key: events.PublicJwk) -> wire.PublicKey:
    """A verification key as the contract's JWK."""
    return wire.PublicKey(
        kid=key.kid, kty="OKP", alg="EdDSA", crv="Ed25519", x=key.x, not_after=key.not_after
    )
