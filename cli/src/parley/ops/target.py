"""Where an operation connects: a node URL, an ACL user with its password, TLS with a CA file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


class OpsError(Exception):
    """A cluster operation could not be done; the message says what and why."""


def split_address(text: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) into its parts; a clear error otherwise."""
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit():
        raise OpsError(f"a node address looks like host:port, got {text!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Target:
    """A cluster reached through one of its nodes (``url``), as ``username`` (the admin user)."""

    url: str
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_options(
        cls,
        url: str,
        *,
        user: str | None = None,
        password_file: Path | None = None,
        ca_file: Path | None = None,
    ) -> Target:
        """From the command line: the password is read from a file, never given as an argument."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname or not parts.port:
            raise OpsError(f"--url must look like redis://host:port or rediss://host:port: {url!r}")
        password = unquote(parts.password) if parts.password else None
        if password_file is not None:
            try:
                password = password_file.read_text().strip()
            except OSError as e:
                raise OpsError(f"cannot read the password file {password_file}: {e}") from e
        username = user or (unquote(parts.username) if parts.username else None)
        if ca_file is not None and not ca_file.is_file():
            raise OpsError(f"the CA file {ca_file} does not exist")
        base = f"{parts.scheme}://{parts.hostname}:{parts.port}"
        return cls(base, username, password, str(ca_file) if ca_file else None)

    @property
    def tls(self) -> bool:
        return self.url.startswith("rediss://")

    @property
    def seed(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 6379

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "username": self.username,
            "password": self.password,
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
        }
        if self.tls:
            options["ssl"] = True
            options["ssl_ca_certs"] = self.ca_file
        return options

    def node(self, host: str, port: int, *, timeout: float | None = None) -> redis.Redis:
        """A plain connection to one node (administration commands go to a named node)."""
        options = self._options()
        if timeout is not None:
            options["socket_timeout"] = options["socket_connect_timeout"] = timeout
        r = redis.Redis(host=host, port=port, retry=Retry(NoBackoff(), 0), **options)
        for command in ("CLUSTER NODES", "CLUSTER INFO"):
            r.set_response_callback(command, lambda response, **_: response)
        return r

    def cluster(self) -> redis.RedisCluster:
        """A cluster client (routing by slot) for data: restore, memory sampling."""
        host, port = self.seed
        return redis.RedisCluster(host=host, port=port, **self._options())

    def describe(self) -> str:
        return f"{self.url} as {self.username or 'default'}"
