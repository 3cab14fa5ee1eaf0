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

    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost: int = Field(default=65536, ge=8)
    """KiB."""
    argon2_parallelism: int = Field(default=4, ge=1)

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
    """Failed logins per username within ``login_window`` before a lockout."""
    login_window: float = Field(default=900.0, gt=0)
    login_address_failures: int = Field(default=50, ge=1)
    """Failed logins per client address within ``login_window`` before refusals."""
    lockout_base: float = Field(default=900.0, gt=0)
    """First lockout (s); each further lockout within a day doubles it."""
    lockout_max: float = Field(default=_DAY, gt=0)

    permission_cache: bool = True
