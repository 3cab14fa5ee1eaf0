"""Settings of the auth service, from AUTH_* environment variables (``AUTH_<NAME>_FILE`` too)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.service.settings import ServiceSettings

_DAY = 86400.0


class Settings(ServiceSettings):
    """See ServiceSettings for the common fields; every variable starts with ``AUTH_``."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore", frozen=True)

    port: int = 8101
    environment: Literal["development", "production"] = "development"
    key_encryption_key: SecretStr | None = None
    """32 random bytes, base64url: seals signing keys, stored replies and sessions at rest.
    Required in production; in development a key is generated into ``.parley/auth/``."""
    old_key_encryption_keys: SecretStr | None = None
    """Earlier key-encryption keys, comma-separated: they open what they sealed, never seal
    (kept after a rotation until nothing sealed under them lives; docs/operations.md)."""
    transit_keys: SecretStr | None = None
    """``id:<base64url 32 bytes>,...`` shared with the gateway: passwords and tokens cross Redis
    sealed under them (the last one seals). Required in production; development shares a
    generated one in ``.parley/transit-keys``."""

    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost: int = Field(default=65536, ge=8)
    """KiB."""
    argon2_parallelism: int = Field(default=4, ge=1)
    argon2_memory_budget: int = Field(default=262144, ge=8)
    """KiB that password hashing may use at once: ``budget // memory_cost`` hashes run at a time
    (at least one), the rest wait. Keep it well under the container's memory limit."""

    access_token_ttl: int = Field(default=600, ge=10)
    token_issuer: str = "parley-auth"  # noqa: S105 - a name, not a secret
    token_audience: str = "parley"  # noqa: S105 - a name, not a secret
    signing_key_rotation: float = Field(default=30 * _DAY, gt=0)
    """Age at which the active signing key is replaced (checked at start and hourly)."""

    session_idle_ttl: float = Field(default=14 * _DAY, gt=0)
    """A session not refreshed for this long ends (sliding renewal)."""
    session_max_lifetime: float = Field(default=30 * _DAY, gt=0)
    """No session lives longer, however often it is refreshed."""

    login_failures: int = Field(default=10, ge=1)
    """Failed password checks per (username, client address) within ``login_window`` before
    that pair is locked out (a stranger elsewhere does not lock the owner out)."""
    login_window: float = Field(default=900.0, gt=0)
    login_user_failures: int = Field(default=50, ge=1)
    """Failed checks of one username from all addresses within ``login_window`` after which its
    checks slow down to one per ``login_slowdown`` seconds (no hard lock for everyone)."""
    login_slowdown: float = Field(default=2.0, gt=0)
    login_address_failures: int = Field(default=50, ge=1)
    """Failed logins per client address within ``login_window`` before refusals."""
    lockout_base: float = Field(default=900.0, gt=0)
    """First lockout of a (username, address) pair (s); each further one within a day doubles."""
    lockout_max: float = Field(default=_DAY, gt=0)

    permission_cache: bool = True
