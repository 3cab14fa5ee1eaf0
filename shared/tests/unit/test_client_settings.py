"""RedisSettings: what a service may configure, and the clear errors for what it may not."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from redis.exceptions import (
    AuthenticationError,
    ClusterDownError,
    ConnectionError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from shared.redis.client import RedisSettings
from shared.redis.errors import PoolExhausted, TopologyUnavailable
from shared.redis.resilient import RetryPolicy, retry_reason, transport_closed

pytestmark = pytest.mark.unit


def _error_text(**fields: object) -> str:
    with pytest.raises(ValidationError) as caught:
        RedisSettings(**fields)  # type: ignore[arg-type]
    return str(caught.value)


def test_defaults_name_a_local_cluster_node() -> None:
    settings = RedisSettings()
    assert settings.cluster
    assert settings.url == "redis://127.0.0.1:7001"
    assert not settings.use_tls


def test_a_url_with_an_unknown_scheme_is_refused() -> None:
    assert "redis://, rediss:// or unix://" in _error_text(url="http://127.0.0.1:7001")


def test_a_url_without_a_host_is_refused() -> None:
    assert "must name a host" in _error_text(url="redis://")


def test_a_unix_socket_cannot_be_a_cluster() -> None:
    assert "set cluster=False" in _error_text(url="unix:///tmp/redis.sock")
    assert not RedisSettings(url="unix:///tmp/redis.sock", cluster=False).cluster


def test_a_cluster_url_cannot_name_a_database() -> None:
    assert "only database 0" in _error_text(url="redis://127.0.0.1:7001/3")
    assert RedisSettings(url="redis://127.0.0.1:6380/3", cluster=False).url.endswith("/3")


def test_a_database_must_be_a_number() -> None:
    assert "database number" in _error_text(url="redis://127.0.0.1:7001/users", cluster=False)


def test_rediss_turns_tls_on() -> None:
    assert RedisSettings(url="rediss://redis.internal:6380").use_tls


def test_tls_files_without_tls_are_refused() -> None:
    assert "TLS is off" in _error_text(ssl_ca_certs=Path("/etc/ssl/ca.pem"))


def test_a_client_certificate_needs_its_key() -> None:
    assert "go together" in _error_text(ssl=True, ssl_certfile=Path("/etc/ssl/client.pem"))


def test_pool_size_and_timeouts_must_be_positive() -> None:
    assert "max_connections" in _error_text(max_connections=0)
    assert "socket_timeout" in _error_text(socket_timeout=0)
    assert "pool_timeout" in _error_text(pool_timeout=-1)


def test_the_backoff_cap_cannot_be_below_its_base() -> None:
    assert "retry_cap" in _error_text(retry_base=2.0, retry_cap=1.0)


def test_unknown_fields_are_refused_not_ignored() -> None:
    assert "max_conections" in _error_text(max_conections=10)


def test_the_password_does_not_show_in_the_settings_repr() -> None:
    settings = RedisSettings(password="s3cret-value")
    assert "s3cret-value" not in repr(settings)
    assert settings.password == "s3cret-value"


def test_backoff_grows_and_stays_under_the_cap() -> None:
    policy = RetryPolicy(attempts=6, base=0.05, cap=1.0)
    waits = [policy.backoff(n) for n in range(1, 7)]
    assert 0.05 <= waits[0] <= 0.1  # equal jitter: at least half of 2 * base
    assert all(wait <= 1.0 for wait in waits)
    assert waits[-1] >= 0.5  # capped steps keep a floor of half the cap


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionError("refused"), "connection"),
        (TimeoutError("slow"), "timeout"),
        (ClusterDownError("CLUSTERDOWN The cluster is down"), "clusterdown"),
        (TryAgainError("TRYAGAIN"), "tryagain"),
        (TopologyUnavailable("no slots"), "topology"),
        (PoolExhausted("full"), None),
        (AuthenticationError("WRONGPASS"), None),
        (ResponseError("WRONGTYPE"), None),
    ],
)
def test_only_transient_failures_are_retried(error: Exception, reason: str | None) -> None:
    assert retry_reason(error) == reason


@pytest.mark.parametrize("seed", ["nohost", "host:", "host:notaport", ":7001", "host:70000"])
def test_malformed_seed_nodes_are_refused(seed: str) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        RedisSettings(seeds=(seed,))


def test_a_write_on_a_closed_transport_counts_as_a_lost_connection() -> None:
    closed = RuntimeError(
        "unable to perform operation on <TCPTransport closed=True reading=False 0x1>; "
        "the handler is closed"
    )
    assert transport_closed(closed)
    assert not transport_closed(RuntimeError("something else"))
    assert not transport_closed(ValueError("the handler is closed"))
