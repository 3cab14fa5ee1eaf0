"""How to reach Redis: :class:`RedisSettings`, validated by pydantic; errors name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.breaker import BreakerSettings

_SCHEMES = ("redis", "rediss", "unix")


class RedisSettings(BaseModel):
    """How to reach Redis. Services embed this in their own ``Settings``.

    ``url`` names one node of a cluster (the client discovers the rest) unless ``cluster=False``,
    which gives a single-node client with the same interface. ``rediss://`` turns TLS on;
    ``unix://`` is single-node only. Credentials in the URL are used when ``username`` /
    ``password`` are not set.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = "redis://127.0.0.1:7001"
    seeds: tuple[str, ...] = ()
    """More ``host:port`` nodes to read the slot map from, so a client starts while the URL's
    node is down."""
    cluster: bool = True
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    """Kept out of ``repr`` so it does not reach logs."""
    client_name: str | None = None

    max_connections: int = Field(default=64, ge=1, le=10_000)
    """Connections per node (per server for a single node)."""
    max_connections_total: int | None = Field(default=None, ge=1, le=100_000)
    """Connections over the whole cluster: each node's pool gets an equal share of the primaries
    found at start (at least one), in place of ``max_connections``. Unset: ``max_connections``
    per node, so the count grows with the cluster."""
    pool_timeout: float = Field(default=1.0, ge=0, le=60)
    """Seconds a command waits for a free connection before :class:`PoolExhausted`."""

    socket_timeout: float = Field(default=5.0, gt=0, le=300)
    """Seconds to wait for a reply; a blocking command (``BLOCK``) must block for less."""
    socket_connect_timeout: float = Field(default=2.0, gt=0, le=60)
    socket_keepalive: bool = True
    """TCP keepalive with redis-py's probes (idle 30 s, every 5 s, 3 probes)."""
    health_check_interval: float = Field(default=15.0, ge=0)
    """A connection idle longer than this is PINGed before reuse (0 turns it off)."""

    retry_attempts: int = Field(default=5, ge=0, le=20)
    """Retries after the first try on connection errors, timeouts, TRYAGAIN and CLUSTERDOWN."""
    retry_base: float = Field(default=0.05, gt=0, le=10)
    """First backoff step in seconds; each retry doubles it (with jitter) up to ``retry_cap``."""
    retry_cap: float = Field(default=1.0, gt=0, le=60)
    breaker: BreakerSettings = BreakerSettings()
    """When a node's breaker (and the slot map's) opens, and for how long it fails fast."""

    ssl: bool = False
    """TLS; implied by a ``rediss://`` URL."""
    ssl_ca_certs: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_cert_reqs: Literal["required", "optional", "none"] = "required"
    ssl_check_hostname: bool = True

    @field_validator("seeds")
    @classmethod
    def _check_seeds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for seed in value:
            host, _, port = seed.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"seed nodes look like host:port, got {seed!r}")
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in _SCHEMES:
            raise ValueError("must start with redis://, rediss:// or unix://")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("must name a host, as in redis://127.0.0.1:7001")
        try:
            _ = parts.port
        except ValueError as e:
            raise ValueError(f"bad port: {e}") from e
        db = parts.path.strip("/")
        if parts.scheme != "unix" and db and not db.isdigit():
            raise ValueError(f"the path names a database number, got {db!r}")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        scheme = urlsplit(self.url).scheme
        if self.cluster and scheme == "unix":
            raise ValueError("a unix:// socket reaches one server: set cluster=False")
        if self.cluster and urlsplit(self.url).path.strip("/") not in ("", "0"):
            raise ValueError("a cluster has only database 0: drop the /<db> from the URL")
        if self.retry_cap < self.retry_base:
            raise ValueError("retry_cap must be at least retry_base")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together")
        tls_options = (self.ssl_ca_certs, self.ssl_certfile, self.ssl_keyfile)
        if not self.use_tls and any(option is not None for option in tls_options):
            raise ValueError("ssl_* files are set but TLS is off: use rediss:// or ssl=True")
        return self

    @property
    def use_tls(self) -> bool:
        """Whether connections use TLS (``ssl=True`` or a ``rediss://`` URL)."""
        return self.ssl or urlsplit(self.url).scheme == "rediss"
