"""Settings of the user service, from USER_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.service.settings import ServiceSettings


class Settings(ServiceSettings):
    """See ServiceSettings for the common fields; every variable starts with ``USER_``."""

    model_config = SettingsConfigDict(env_prefix="USER_", extra="ignore", frozen=True)

    port: int = 8102
    presence_device_ttl: float = Field(default=60.0, gt=0)
    """Seconds a device counts as there after its last heartbeat."""
    presence_offline_grace: float = Field(default=5.0, ge=0)
    """Seconds to wait after the last device closed before announcing offline."""
    presence_sweep_interval: float = Field(default=1.0, gt=0)
    """How often the elected instance looks for expired devices and ended graces."""
    cache_enabled: bool = True
    """Off: every read goes to the database (for diagnosis and benchmarks)."""
    profile_near_cache_size: int = Field(default=10_000, ge=0)
    """Hot profiles kept in process (0: no near-cache)."""
    profile_near_cache_ttl: float = Field(default=10.0, gt=0)
    """Longest a near-cached profile is served without asking Redis."""
