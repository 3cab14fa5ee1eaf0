"""Which peer may tell the gateway a client's address, and the address it then names.

``X-Forwarded-For`` is a header any client can send, so it is believed only from a configured
proxy (``GATEWAY_TRUSTED_PROXIES``: addresses and CIDRs; none by default). From such a peer the
client is the right-most hop that is not itself a trusted proxy, as uvicorn's
``ProxyHeadersMiddleware`` takes it: each proxy appends the address it saw, so the entries on the
left were written by the client and may be anything, while the right-most untrusted entry was
written by our own proxy. From any other peer the header is ignored and the peer is the client.
"""

from __future__ import annotations

import ipaddress
from typing import Final

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_ADDRESS: Final = 64
"""The longest address kept (a rate-limit subject and a log field)."""
_CACHE_SIZE: Final = 4096


class ProxyConfigError(ValueError):
    """A trusted-proxy entry that is neither an address nor a network."""


class TrustedProxies:
    """A set of trusted proxy addresses and networks (``*`` trusts every peer)."""

    def __init__(self, spec: str = "") -> None:
        entries = [e.strip() for e in spec.split(",") if e.strip()]
        self.trust_all = "*" in entries
        self.networks: tuple[_Network, ...] = tuple(_network(e) for e in entries if e != "*")
        # Parsing an address costs microseconds on every request behind a proxy; the proxy's own
        # address and the busy clients repeat, so answers are remembered (bounded: cleared when
        # full, as a flood of distinct addresses must not grow it).
        self._known: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return self.trust_all or bool(self.networks)

    def trusts(self, host: str) -> bool:
        """Whether ``host`` is one of the trusted proxies (a name or a bad address is not)."""
        if self.trust_all:
            return True
        known = self._known.get(host)
        if known is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                known = False
            else:
                known = any(address in network for network in self.networks)
            if len(self._known) >= _CACHE_SIZE:
                self._known.clear()
            self._known[host] = known
        return known

    def client(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address: the peer, or behind a trusted one the right-most untrusted hop.

        When every hop is trusted, the left-most is the client (nothing else names it).
        """
        if peer is None or not forwarded_for or not self or not self.trusts(peer):
            return peer[:MAX_ADDRESS] if peer else None
        hops = [h.strip() for h in forwarded_for.split(",")]
        hops = [h for h in hops if h]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop[:MAX_ADDRESS]
        return (hops[0] if hops else peer)[:MAX_ADDRESS]


def _network(entry: str) -> _Network:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError as e:
        raise ProxyConfigError(f"not an address or network: {entry!r}") from e
