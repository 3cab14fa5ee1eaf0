"""Service settings from environment variables, with a prefix per service.

Every service declares one ``Settings`` class deriving from :class:`ServiceSettings` with its own
``env_prefix`` (``CHAT_``...). A value may also come from a file named by ``<PREFIX><NAME>_FILE``
(Docker and Kubernetes secrets). Problems surface as one :class:`ConfigError` naming each variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from shared.breaker import BreakerSettings
from shared.redis.client import RedisSettings
from shared.service.errors import ConfigError
from shared.service.paths import state_dir

S = TypeVar("S", bound="ServiceSettings")


class ServiceSettings(BaseSettings):
    """Settings every service has: where it listens, which Redis and which database it uses."""

    model_config = SettingsConfigDict(env_prefix="PARLEY_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8100, ge=1, le=65535)
    # A second listener for /health/* and /metrics, for a service whose own port is public (the
    # gateway): the admin port stays on the internal network. Unset: no second listener.
    admin_port: int | None = Field(default=None, ge=1, le=65535)
    admin_host: str | None = None  # unset: ``host``
    # Seconds an idle HTTP keep-alive connection stays open. Longer than the idle timeout of the
    # load balancers in front (60 s for AWS ALB and for nginx's upstream keepalive_timeout), so
    # the service is never the side that closes a connection the balancer is about to reuse: a
    # request sent as the server closes fails, and a POST is not retried. (uvicorn's own: 5 s.)
    http_keep_alive: int = Field(default=75, ge=1)
    # WebSocket permessage-deflate (RFC 7692; only the gateway serves WebSockets), off unless
    # asked for: chat frames are a few hundred bytes, where deflate saves little on the wire but
    # costs CPU on every frame at both ends and a compressor per connection (docs/websocket.md).
    ws_compression: bool = False
    # Largest WebSocket message the server reads (uvicorn's ws_max_size, 16 MiB by default): a
    # larger one closes the connection with 1009 before it is buffered. 64 KiB is the gateway's
    # largest legitimate client frame (a long resume), so a flood of big frames costs no memory.
    ws_max_size: int = Field(default=64 * 1024, ge=1024)
    redis_url: str = "redis://127.0.0.1:7001"
    redis_cluster: bool = True
    redis_seeds: str = ""  # more cluster nodes, "host:port,host:port", tried when the URL's is down
    redis_username: str | None = None
    redis_password: str | None = None
    redis_connect_timeout: float = Field(default=10.0, gt=0)
    redis_max_connections: int = Field(default=64, ge=1)
    # Over the whole cluster (each node's pool an equal share), in place of the per-node bound.
    redis_max_connections_total: int | None = Field(default=None, ge=1)
    redis_pool_timeout: float = Field(default=1.0, ge=0)
    redis_ssl: bool = False
    redis_ssl_ca_certs: Path | None = None
    # Circuit breakers of this service's dependencies (each Redis node, the database, each service
    # it sends commands to): open after ``breaker_failures`` failures in a row within
    # ``breaker_window`` seconds, then fail fast for ``breaker_cooldown`` seconds before a probe.
    breaker_enabled: bool = True
    breaker_failures: int = Field(default=5, ge=1)
    breaker_window: float = Field(default=10.0, gt=0)
    breaker_cooldown: float = Field(default=5.0, gt=0)
    database_url: str | None = None
    migrate_on_start: bool = True
    instance: str = Field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """``<PREFIX><FIELD>_FILE`` names a file whose content is the field's value."""
        if not isinstance(data, dict):
            return data
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name in cls.model_fields:
            path = os.environ.get(f"{prefix}{name.upper()}_FILE")
            if path and name not in data:
                try:
                    data[name] = Path(path).read_text().strip()
                except OSError as e:
                    raise ValueError(f"{prefix}{name.upper()}_FILE={path}: {e.strerror}") from e
        return data

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            url = make_url(value)
        except ArgumentError as e:
            raise ValueError(f"not a database URL: {e}") from e
        if url.drivername not in {"sqlite+aiosqlite", "postgresql+asyncpg"}:
            raise ValueError("use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db")
        return value

    def redis(self) -> RedisSettings:
        """The Redis client settings these service settings name."""
        return RedisSettings(
            url=self.redis_url,
            seeds=tuple(s.strip() for s in self.redis_seeds.split(",") if s.strip()),
            cluster=self.redis_cluster,
            username=self.redis_username,
            password=self.redis_password,
            client_name=self.instance,
            max_connections=self.redis_max_connections,
            max_connections_total=self.redis_max_connections_total,
            pool_timeout=self.redis_pool_timeout,
            ssl=self.redis_ssl,
            ssl_ca_certs=self.redis_ssl_ca_certs,
            breaker=self.breaker(),
        )

    def breaker(self) -> BreakerSettings:
        """The circuit breaker settings these service settings name."""
        return BreakerSettings(
            enabled=self.breaker_enabled,
            failures=self.breaker_failures,
            window=self.breaker_window,
            cooldown=self.breaker_cooldown,
        )

    def database(self, service: str) -> str:
        """The database URL: the configured one, else a SQLite file under ``.parley/data``."""
        if self.database_url:
            return self.database_url
        path = state_dir() / "data" / f"{service}.db"
        return f"sqlite+aiosqlite:///{path}"


def load_settings(cls: type[S]) -> S:
    """Read ``cls`` from the environment, or raise one :class:`ConfigError` naming every problem."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    try:
        return cls()
    except ValidationError as e:
        problems = []
        for err in e.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            problems.append(f"{prefix}{field.upper()}: {err['msg']}")
        raise ConfigError("; ".join(problems)) from e


LogFormat = Literal["human", "json"]
