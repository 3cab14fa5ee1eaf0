"""Settings of the notification service, from NOTIFICATION_* environment variables."""

from __future__ import annotations

from pydantic import Field, IPvAnyNetwork, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.service.settings import ServiceSettings


class Settings(ServiceSettings):
    """See ServiceSettings for the common fields; every variable starts with ``NOTIFICATION_``."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_", extra="ignore", frozen=True)

    port: int = 8104
    coalesce_window: float = Field(default=60.0, gt=0)
    """Seconds during which further messages of a conversation grow one notification."""
    webhook_secret: SecretStr | None = None
    """Master key of the webhooks: each user's signing secret is sealed under a key derived from
    it. Without it no webhook can be set (422) and none is delivered."""
    webhook_attempts: int = Field(default=5, ge=1, le=20)
    webhook_backoff_base: float = Field(default=1.0, gt=0)
    webhook_backoff_max: float = Field(default=60.0, gt=0)
    webhook_timeout: float = Field(default=5.0, gt=0)
    webhook_max_response: int = Field(default=64 * 1024, ge=0)
    """Bytes of a receiver's answer read at most (the rest is not read)."""
    webhook_dev_allow_http: bool = False
    """Development only: accept ``http://`` webhook URLs (production requires ``https``)."""
    webhook_dev_allowed_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    """Development only: networks the SSRF guard lets through (tests: ``["127.0.0.1/32"]``).
    Production leaves it empty, so loopback, private and link-local addresses stay refused."""
