"""Access tokens and signing keys: what verifies and what is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from auth.crypto.sealing import Sealer, SealingError, new_key, parse_key
from auth.crypto.tokens import SigningKey, TokenCodec
from auth.domain.errors import InvalidToken

pytestmark = pytest.mark.unit

CODEC = TokenCodec(issuer="parley-auth", audience="parley", lifetime=600)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _now() -> datetime:
    return datetime.now(UTC)


def _token(key: SigningKey, *, codec: TokenCodec = CODEC, now: datetime | None = None) -> str:
    return codec.issue(key, user_id="u1", session_id="s1", roles=("user",), now=now or _now())


def test_a_token_verifies_with_its_key_and_carries_its_claims() -> None:
    key = SigningKey.generate(now=_now())
    claims = CODEC.verify(_token(key), {key.kid: key}, now=_now())
    assert (claims.user_id, claims.session_id, claims.roles, claims.kid) == (
        "u1",
        "s1",
        ("user",),
        key.kid,
    )
    assert claims.expires_at - claims.issued_at == timedelta(seconds=600)


def test_a_token_signed_by_another_key_under_the_same_kid_is_refused() -> None:
    key = SigningKey.generate(now=_now())
    forger = SigningKey.generate(now=_now())
    forged = jwt.encode(
        {
            "sub": "u1",
            "sid": "s1",
            "aud": "parley",
            "iss": "parley-auth",
            "iat": 1,
            "jti": "j",
            "exp": int(_now().timestamp()) + 600,
        },
        forger.private,  # type: ignore[arg-type]
        algorithm="EdDSA",
        headers={"kid": key.kid},
    )
    with pytest.raises(InvalidToken):
        CODEC.verify(forged, {key.kid: key}, now=_now())


def test_a_tampered_payload_breaks_the_signature() -> None:
    key = SigningKey.generate(now=_now())
    header, payload, signature = _token(key).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["admin"]
    tampered = ".".join([header, _b64(json.dumps(claims).encode()), signature])
    with pytest.raises(InvalidToken):
        CODEC.verify(tampered, {key.kid: key}, now=_now())


def test_alg_none_is_refused() -> None:
    key = SigningKey.generate(now=_now())
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": key.kid}).encode())
    claims = {
        "sub": "u1",
        "sid": "s1",
        "aud": "parley",
        "iss": "parley-auth",
        "jti": "j",
        "iat": 1,
        "exp": int(_now().timestamp()) + 600,
    }
    unsigned = f"{header}.{_b64(json.dumps(claims).encode())}."
    with pytest.raises(InvalidToken, match="algorithm"):
        CODEC.verify(unsigned, {key.kid: key}, now=_now())


def test_an_unknown_kid_is_refused() -> None:
    key = SigningKey.generate(now=_now())
    other = SigningKey.generate(now=_now())
    with pytest.raises(InvalidToken, match="key id"):
        CODEC.verify(_token(key), {other.kid: other}, now=_now())


def test_an_expired_token_is_refused() -> None:
    key = SigningKey.generate(now=_now())
    old = _token(key, now=_now() - timedelta(minutes=11))
    with pytest.raises(InvalidToken, match="Expired"):
        CODEC.verify(old, {key.kid: key}, now=_now())


def test_a_token_for_another_audience_is_refused() -> None:
    key = SigningKey.generate(now=_now())
    elsewhere = TokenCodec(issuer="parley-auth", audience="billing", lifetime=600)
    with pytest.raises(InvalidToken, match="Audience"):
        CODEC.verify(_token(key, codec=elsewhere), {key.kid: key}, now=_now())


async def test_rotation_keeps_tokens_of_the_retired_key_valid(fake_auth: Any) -> None:
    keys = fake_auth.keys
    old_kid = keys.active().kid
    token = keys.issue(user_id="u1", session_id="s1", roles=("user",))
    await keys.rotate()
    assert keys.active().kid != old_kid
    assert (await keys.verify(token)).kid == old_kid
    assert [k.kid for k in keys.public_jwks()] == [keys.active().kid, old_kid]
    retired = next(k for k in keys.verification_keys() if k.kid == old_kid)
    assert retired.not_after is not None and retired.not_after > _now() + timedelta(minutes=10)


def test_a_retired_key_past_its_not_after_verifies_nothing() -> None:
    key = SigningKey.generate(now=_now())
    token = _token(key)
    gone = SigningKey(
        kid=key.kid,
        public=key.public,
        private=None,
        created_at=key.created_at,
        retired_at=_now(),
        not_after=_now() - timedelta(seconds=1),
    )
    with pytest.raises(InvalidToken):
        CODEC.verify(token, {key.kid: gone}, now=_now())


def test_after_a_kek_rotation_old_values_open_and_new_ones_need_the_new_key() -> None:
    old, new = parse_key(new_key()), parse_key(new_key())
    before = Sealer(old, purpose="auth/test/v1").seal(b"secret", binding="row-1")
    rotated = Sealer(new, purpose="auth/test/v1", old=[old])
    assert rotated.open(before, binding="row-1") == b"secret"
    after = rotated.seal(b"secret", binding="row-2")
    with pytest.raises(SealingError):
        Sealer(old, purpose="auth/test/v1").open(after, binding="row-2")
    with pytest.raises(SealingError):
        Sealer(new, purpose="auth/test/v1").open(before, binding="row-1")
