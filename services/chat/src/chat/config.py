"""Settings of the chat service, from CHAT_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.service.settings import ServiceSettings


class Settings(ServiceSettings):
    """See ServiceSettings for the shared fields; every variable starts with ``CHAT_``."""

    model_config = SettingsConfigDict(env_prefix="CHAT_", extra="ignore", frozen=True)

    port: int = 8103
    member_limit: int = Field(default=1000, ge=2, le=1000)
    """Most members of a group (1000: the wire bound of a member list in ``contracts.chat``)."""
    typing_rate: int = Field(default=5, ge=1)
    """Typing frames a user may send per second (bursts of ``typing_burst``)."""
    typing_burst: int = Field(default=10, ge=1)
