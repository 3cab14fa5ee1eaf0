"""The SSRF guard's rules, without any I/O: which URLs and addresses a webhook may use."""

from __future__ import annotations

import ipaddress

import pytest

from notification.domain.errors import UnsafeWebhookError
from notification.domain.webhooks import WebhookPolicy, check_address, check_url

STRICT = WebhookPolicy()
DEV = WebhookPolicy(allow_http=True, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("100.64.0.1", "non-global"),
        ("fd00::1", "private"),
    ],
)
def test_internal_addresses_are_refused_with_their_kind(address: str, kind: str) -> None:
    with pytest.raises(UnsafeWebhookError, match=kind):
        check_address(ipaddress.ip_address(address), STRICT)


def test_public_addresses_pass_and_development_networks_only_when_named() -> None:
    check_address(ipaddress.ip_address("93.184.215.14"), STRICT)
    check_address(ipaddress.ip_address("2606:2800:21f:cb07:6820:80da:af6b:8b2c"), STRICT)
    check_address(ipaddress.ip_address("127.0.0.1"), DEV)
    with pytest.raises(UnsafeWebhookError):
        check_address(ipaddress.ip_address("127.0.0.2"), DEV)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "ftp://example.com/",
        "https:///nohost",
        "https://user:pw@example.com/",
        "https://example.com:99999/",
        "javascript:alert(1)",
    ],
)
def test_urls_other_than_https_to_a_host_are_refused(url: str) -> None:
    with pytest.raises(UnsafeWebhookError):
        check_url(url, STRICT)


def test_http_only_with_the_development_flag() -> None:
    target = check_url("http://Example.com/hook", DEV)
    assert (target.scheme, target.host, target.port) == ("http", "example.com", 80)
    assert check_url("https://[2001:db8::1]:8443/x", STRICT).port == 8443


@pytest.mark.parametrize(
    "url",
    [
        "https://exa\x93mple.com/hook",  # found by schemathesis: the resolver's IDNA step raised
        "https://bad_host.example/",
        "https://-leading.example/",
        "https://" + "a" * 64 + ".example/",
        "https://exa mple.com/",
    ],
)
def test_a_host_name_the_resolver_could_not_be_asked_about_is_refused(url: str) -> None:
    with pytest.raises(UnsafeWebhookError, match="host name is not valid"):
        check_url(url, STRICT)


def test_international_and_trailing_dot_names_are_host_names() -> None:
    assert check_url("https://bücher.example/hook", STRICT).host == "bücher.example"
    assert check_url("https://hooks.example.org./x", STRICT).port == 443
