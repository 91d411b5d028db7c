"""Who is at the other end of a request: the client's address, the one function every limit
keyed on an address and the audit trail use.

`X-Forwarded-For` is written by whoever sends the request, so it is read only when the
deployment declares its proxies (settings.TRUSTED_PROXIES) and the request came from one of
them; the header is then read from its right end, each hop a declared proxy added, to the
first address that is not a proxy: the one the outermost trusted proxy saw. Whatever a client
puts further left is never reached. Without declared proxies the socket's address is the
client's (docs/operations.md, "Behind a proxy").
"""

from __future__ import annotations

import ipaddress
from functools import cache

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _networks(declared: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in declared)


def _address(raw: str) -> Address | None:
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    # An IPv4 client of a dual-stack socket reads as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_address(request) -> str | None:
    """The client's IP address as text, or None when the socket gave none that parses."""
    peer = _address(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return None
    proxies = _networks(tuple(settings.TRUSTED_PROXIES))

    def trusted(address: Address) -> bool:
        return any(address in network for network in proxies)

    if not proxies or not trusted(peer):
        return str(peer)
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    client = peer
    for raw in reversed(hops):
        hop = _address(raw)
        if hop is None:
            break  # a garbled entry: nothing left of it can be vouched for
        client = hop
        if not trusted(hop):
            break
    return str(client)
