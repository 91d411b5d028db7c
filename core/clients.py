"""Who is at the other end of a request: the client's address, the one function every limit
keyed on an address and the audit trail use.

`X-Forwarded-For` is written by whoever sends the request, so it is read only when the
deployment declares its proxies (settings.TRUSTED_PROXIES) and the request came from one of
them; the header is then read from its right end, each hop a declared proxy added, to the
first address that is not a proxy: the one the outermost trusted proxy saw. Whatever a client
puts further left is never reached. Without declared proxies the socket's address is the
client's (docs/operations.md, "Behind a proxy"). The same declaration decides whose
`X-Forwarded-Proto` is believed (ForwardedProto).
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


def _proxies() -> tuple[Network, ...]:
    return _networks(tuple(settings.TRUSTED_PROXIES))


def _trusted(address: Address, proxies: tuple[Network, ...]) -> bool:
    return any(address in network for network in proxies)


def _peer(request) -> Address | None:
    return _address(request.META.get("REMOTE_ADDR") or "")


def client_address(request) -> str | None:
    """The client's IP address as text, or None when the socket gave none that parses."""
    peer, proxies = _peer(request), _proxies()
    if peer is None:
        return None
    if not _trusted(peer, proxies):
        return str(peer)
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    client = peer
    for raw in reversed(hops):
        hop = _address(raw)
        if hop is None:
            break  # a garbled entry: nothing left of it can be vouched for
        client = hop
        if not _trusted(hop, proxies):
            break
    return str(client)


class ForwardedProto:
    """Middleware, first of all: where proxies are declared, an `X-Forwarded-Proto` from anyone
    else is dropped before Django reads it (SECURE_PROXY_SSL_HEADER, with
    PRODRAG_BEHIND_TLS_PROXY), so that a client cannot call its plain request HTTPS."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        proxies = _proxies()
        if proxies and "HTTP_X_FORWARDED_PROTO" in request.META:
            peer = _peer(request)
            if peer is None or not _trusted(peer, proxies):
                del request.META["HTTP_X_FORWARDED_PROTO"]
        return self.get_response(request)
