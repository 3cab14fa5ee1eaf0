"""Settings of the notification service, from NOTIFICATION_* environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.service.settings import ServiceSettings


class Settings(ServiceSettings):
    """See ServiceSettings for the common fields; every variable starts with ``NOTIFICATION_``."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_", extra="ignore", frozen=True)

    port: int = 8104
    coalesce_window: float = Field(default=60.0, gt=0)
    """Seconds during which further messages of a conversation grow one notification."""
    webhook_secret: SecretStr | None = None
    """HMAC key that signs webhook bodies; without it webhook deliveries are dead-lettered."""
    webhook_attempts: int = Field(default=5, ge=1, le=20)
    webhook_backoff_base: float = Field(default=1.0, gt=0)
    webhook_backoff_max: float = Field(default=60.0, gt=0)
    webhook_timeout: float = Field(default=5.0, gt=0)
