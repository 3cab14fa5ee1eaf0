"""Settings of the gateway service, from GATEWAY_* environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.service.settings import ServiceSettings


class Settings(ServiceSettings):
    """See ServiceSettings for the fields; every variable starts with ``GATEWAY_``."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    port: int = 8080
