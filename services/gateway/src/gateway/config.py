"""Settings of the gateway service, from GATEWAY_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from gateway.domain.proxies import TrustedProxies
from shared.service.settings import ServiceSettings


class Settings(ServiceSettings):
    """See ServiceSettings for the common fields; every variable starts with ``GATEWAY_``."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    port: int = 8080
    admin_port: int | None = Field(default=8105, ge=1, le=65535)
    """The admin listener (/health/* with details, /metrics): never published, scraped inside."""
    environment: Literal["development", "production"] = "development"
    redis_max_connections_total: int | None = Field(default=96, ge=1)
    """Connections over the whole cluster (each node an equal share): the gateway's count stays
    the same however many sockets it holds (their channels share the pub/sub connections). 96:
    its 32 stream partitions (auth.events, user.events, chat.events) each hold one for a blocking
    read, and 64 are left for commands."""
    graphql_introspection: bool | None = None
    """GraphQL introspection; unset: on in development, off in production."""
    hsts: bool = False
    """Send Strict-Transport-Security (only when clients reach the gateway over TLS)."""
    transit_keys: SecretStr | None = None
    """``id:<base64url 32 bytes>,...``, the same as auth's ``AUTH_TRANSIT_KEYS``: passwords and
    tokens cross Redis sealed under them. Required in production; development shares a
    generated one in ``.parley/transit-keys``."""

    token_audience: str = "parley"  # noqa: S105 - a name, not a secret
    token_issuer: str = "parley-auth"  # noqa: S105 - a name, not a secret
    token_leeway: float = Field(default=5.0, ge=0)
    max_token_lifetime: float = Field(default=900.0, gt=0)
    """At least auth's access-token lifetime: how long a revoked session is remembered."""
    key_refresh_interval: float = Field(default=5.0, gt=0)
    """Least time between two key fetches caused by tokens naming an unknown kid."""

    command_timeout: float | None = Field(default=None, gt=0)
    """Seconds to wait for a reply; unset: each command's own TIMEOUT."""
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    """Largest accepted request body (413 above)."""

    user_rate: int = Field(default=20, ge=1)
    """Sustained API requests per second per user."""
    user_burst: int = Field(default=60, ge=1)
    address_rate: int = Field(default=50, ge=1)
    """Sustained API requests per second per client address (all users behind it)."""
    address_burst: int = Field(default=150, ge=1)
    auth_rate: int = Field(default=10, ge=1)
    """Register/login/refresh attempts per minute per client address."""
    auth_burst: int = Field(default=20, ge=1)
    trusted_proxies: str = ""
    """Proxies (addresses, CIDRs, comma-separated; ``*`` all) whose X-Forwarded-For is believed:
    the client is then the right-most hop that is not one of them. Default: none, the peer is the
    client."""

    response_cache: bool = True
    """Cache GET responses per viewer (off: every GET goes to the owning service)."""

    @property
    def introspection(self) -> bool:
        """Whether GraphQL answers introspection queries."""
        if self.graphql_introspection is not None:
            return self.graphql_introspection
        return self.environment == "development"

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        TrustedProxies(value)  # raises ProxyConfigError (a ValueError) naming the bad entry
        return value
