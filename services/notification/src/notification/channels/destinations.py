"""Resolving a webhook URL to the one address the request goes to (the SSRF guard's I/O half).

Every address the name resolves to must pass :func:`~notification.domain.webhooks.check_address`
(a name with one internal address among public ones is refused: which one a client would pick
is not ours to know). The request then connects to the address checked here, with the original
``Host`` header and TLS server name, so a second DNS answer (rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from notification.domain.errors import UnresolvedWebhookError
from notification.domain.webhooks import (
    IpAddress,
    WebhookPolicy,
    check_address,
    check_url,
    literal_address,
)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port)`` to the addresses it resolves to (textual)."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The system's resolver (``getaddrinfo``), TCP addresses only."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a webhook request goes: the URL rewritten to the checked address, and the names
    the server must see."""

    url: str
    """The original URL with its host replaced by the pinned address."""
    host_header: str
    server_name: str | None
    """The TLS server name (SNI and certificate check); None for ``http``."""


class WebhookGuard:
    """Checks webhook URLs when they are set and again before each delivery."""

    def __init__(self, policy: WebhookPolicy, *, resolver: Resolver = system_resolver) -> None:
        self._policy = policy
        self._resolve = resolver

    async def destination(self, url: str) -> Destination:
        """Where to send a request for ``url``; UnsafeWebhookError when it must not be sent."""
        target = check_url(url, self._policy)
        address = literal_address(target.host)
        addresses = [address] if address is not None else await self._addresses_of(target.host)
        for found in addresses:
            check_address(found, self._policy)
        pinned = addresses[0]
        literal = f"[{pinned}]" if pinned.version == 6 else str(pinned)
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default = 443 if target.scheme == "https" else 80
        shown = target.host if ":" not in target.host else f"[{target.host}]"
        host_header = shown if target.port == default else f"{shown}:{target.port}"
        return Destination(
            url=f"{target.scheme}://{literal}:{target.port}{path}",
            host_header=host_header,
            server_name=target.host if target.scheme == "https" else None,
        )

    async def _addresses_of(self, host: str) -> list[IpAddress]:
        try:
            found = await self._resolve(host, 0)
        except OSError as e:
            raise UnresolvedWebhookError(f"the host does not resolve: {e}") from e
        addresses = [a for a in (literal_address(t.split("%", 1)[0]) for t in found) if a]
        if not addresses:
            raise UnresolvedWebhookError("the host does not resolve")
        return addresses
