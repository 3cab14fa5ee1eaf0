"""Which webhook destinations may be called: the rules of the SSRF guard, without any I/O.

A webhook URL is chosen by a user, so calling it lets anyone make the service send requests
into its own network (the admin ports, Redis, a cloud metadata service). Only ``https`` to a
globally routable address is allowed. Development may allow ``http`` and name networks that
are let through (tests run their receiver on 127.0.0.1); production leaves both off.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from notification.domain.errors import UnsafeWebhookError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """What the guard lets through beyond public ``https`` (both only for development)."""

    allow_http: bool = False
    allowed_networks: tuple[IpNetwork, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """The parts of a checked webhook URL the request is built from."""

    scheme: str
    host: str
    """Host name or address literal as written (IPv6 without brackets), lower-cased."""
    port: int


def check_url(url: str, policy: WebhookPolicy) -> WebhookTarget:
    """The target of ``url``, or UnsafeWebhookError for a scheme or shape that is refused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise UnsafeWebhookError(f"not a valid URL: {e}") from e
    schemes = {"https", "http"} if policy.allow_http else {"https"}
    if parts.scheme not in schemes:
        raise UnsafeWebhookError(f"the scheme must be {' or '.join(sorted(schemes))}")
    if not parts.hostname:
        raise UnsafeWebhookError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeWebhookError("credentials in the URL are not allowed")
    if literal_address(parts.hostname) is None and not _valid_host_name(parts.hostname):
        raise UnsafeWebhookError("the host name is not valid")
    default = 443 if parts.scheme == "https" else 80
    return WebhookTarget(scheme=parts.scheme, host=parts.hostname, port=port or default)


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _valid_host_name(host: str) -> bool:
    """A DNS name the resolver can be asked about: IDNA-encodable, letters, digits and hyphens."""
    try:
        ascii_host = host.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.split(".")
    return len(ascii_host) <= 253 and all(_LABEL.match(label) for label in labels)


def literal_address(host: str) -> IpAddress | None:
    """``host`` as an IP address when it is a literal, else None (a name to resolve)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_address(address: IpAddress, policy: WebhookPolicy) -> None:
    """UnsafeWebhookError unless ``address`` is public (or in a development network)."""
    if any(address in network for network in policy.allowed_networks):
        return
    # An IPv4 address written as IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    kind = _internal_kind(address)
    if kind is not None:
        raise UnsafeWebhookError(f"the host resolves to a {kind} address")


def _internal_kind(address: IpAddress) -> str | None:
    # The most specific kind first (the standard library counts link-local as private too).
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-global", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)
