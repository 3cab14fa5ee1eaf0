"""Which X-Forwarded-For the gateway believes, and which hop it takes for the client."""

from __future__ import annotations

import pytest

from gateway.api.middleware import client_address
from gateway.config import Settings
from gateway.domain.proxies import ProxyConfigError, TrustedProxies


def test_by_default_no_proxy_is_trusted_and_a_spoofed_header_changes_nothing() -> None:
    proxies = TrustedProxies()
    assert proxies.client("203.0.113.7", "198.51.100.1") == "203.0.113.7"


def test_a_header_from_an_untrusted_peer_is_ignored() -> None:
    proxies = TrustedProxies("10.0.0.0/8")
    assert proxies.client("203.0.113.7", "198.51.100.1, 10.0.0.2") == "203.0.113.7"


def test_behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() -> None:
    proxies = TrustedProxies("10.0.0.0/8, 192.168.1.1")
    # The client wrote "1.1.1.1" itself; the proxy appended what it saw (198.51.100.9).
    header = "1.1.1.1, 198.51.100.9, 10.1.2.3"
    assert proxies.client("192.168.1.1", header) == "198.51.100.9"


def test_when_every_hop_is_trusted_the_left_most_is_the_client() -> None:
    proxies = TrustedProxies("10.0.0.0/8")
    assert proxies.client("10.0.0.1", "10.0.0.5, 10.0.0.6") == "10.0.0.5"


def test_ipv6_peers_and_networks_are_understood() -> None:
    proxies = TrustedProxies("::1, fd00::/8")
    assert proxies.client("::1", "2001:db8::1, fd00::2") == "2001:db8::1"
    assert proxies.client("2001:db8::5", "2001:db8::1") == "2001:db8::5"


def test_a_star_trusts_every_peer() -> None:
    assert TrustedProxies("*").client("203.0.113.7", "198.51.100.1") == "198.51.100.1"


def test_an_empty_or_blank_header_leaves_the_peer() -> None:
    proxies = TrustedProxies("10.0.0.0/8")
    assert proxies.client("10.0.0.1", "") == "10.0.0.1"
    assert proxies.client("10.0.0.1", " , ") == "10.0.0.1"


def test_an_overlong_hop_is_cut_to_the_address_bound() -> None:
    proxies = TrustedProxies("10.0.0.1")
    assert proxies.client("10.0.0.1", "x" * 500) == "x" * 64


def test_a_bad_trusted_proxy_setting_stops_the_service_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ProxyConfigError, match="not-an-ip"):
        TrustedProxies("10.0.0.1, not-an-ip")
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/33")
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        Settings()


def test_the_middleware_takes_the_peer_from_the_scope() -> None:
    scope = {"type": "http", "client": ("127.0.0.1", 5000)}
    headers = {"x-forwarded-for": "6.6.6.6"}
    assert client_address(scope, headers, TrustedProxies()) == "127.0.0.1"
    assert client_address(scope, headers, TrustedProxies("127.0.0.1")) == "6.6.6.6"


def test_a_flood_of_distinct_hops_keeps_the_remembered_answers_bounded() -> None:
    proxies = TrustedProxies("10.0.0.0/8")
    for n in range(10_000):
        assert proxies.client("10.0.0.1", f"198.51.{n // 256 % 256}.{n % 256}, 10.0.0.9")
    assert len(proxies._known) <= 4096
    assert proxies.trusts("10.1.2.3") and not proxies.trusts("198.51.100.1")
