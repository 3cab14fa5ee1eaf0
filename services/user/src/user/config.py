"""Settings of the user service, from USER_* environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.service.settings import ServiceSettings


class Settings(ServiceSettings):
    """See ServiceSettings for the fields; every variable starts with ``USER_``."""

    model_config = SettingsConfigDict(env_prefix="USER_", extra="ignore", frozen=True)

    port: int = 8102
