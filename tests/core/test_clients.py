"""The client's address (core.clients): from the socket unless the request came through a
declared proxy, and then only as far back as the chain of declared proxies goes."""

import pytest
from django.test import RequestFactory

from core.clients import client_address


def _request(peer: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "expected"),
    [
        # No proxy declared: the header is whatever the client wrote.
        ([], "192.0.2.1", "203.0.113.9", "192.0.2.1"),
        # Declared, but this request did not come from one: the header is the client's own.
        (["10.0.0.0/8"], "192.0.2.1", "203.0.113.9", "192.0.2.1"),
        # From a proxy: the address it saw, whatever was written to the left of it.
        (["10.0.0.0/8"], "10.0.0.2", "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        # Two declared proxies in a row: the first address outside them.
        (["10.0.0.0/8"], "10.0.0.2", "1.2.3.4, 203.0.113.9, 10.5.5.5", "203.0.113.9"),
        # A single proxy address, not a network.
        (["127.0.0.1"], "127.0.0.1", "203.0.113.9", "203.0.113.9"),
        # A proxy that sent no header, or a garbled one: the proxy itself.
        (["10.0.0.0/8"], "10.0.0.2", None, "10.0.0.2"),
        (["10.0.0.0/8"], "10.0.0.2", "not-an-address", "10.0.0.2"),
        # Garbled further left than the client: never reached.
        (["10.0.0.0/8"], "10.0.0.2", "junk, 203.0.113.9", "203.0.113.9"),
        # IPv6, and IPv4 as a dual-stack socket reports it.
        (["fd00::/8"], "fd00::1", "2001:db8::7", "2001:db8::7"),
        ([], "::ffff:192.0.2.1", None, "192.0.2.1"),
    ],
)
def test_client_address(settings, proxies, peer, forwarded, expected):
    settings.TRUSTED_PROXIES = proxies
    assert client_address(_request(peer, forwarded)) == expected


def test_a_socket_without_an_address_gives_none(settings):
    settings.TRUSTED_PROXIES = []
    assert client_address(_request("")) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("peer", "redirected"),
    [("192.0.2.1", True), ("10.0.0.2", False)],
)
def test_only_a_declared_proxy_may_call_a_request_https(client, settings, peer, redirected):
    """GIVEN a TLS proxy declared (PRODRAG_BEHIND_TLS_PROXY, PRODRAG_TRUSTED_PROXIES) and HTTPS
    required WHEN a plain request says X-Forwarded-Proto: https THEN it counts as HTTPS only
    from the declared proxy; anyone else is sent to HTTPS."""
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/accounts/login/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_PROTO="https")
    assert (response.status_code == 301 and response["Location"].startswith("https://")) == (
        redirected
    )
    if not redirected:
        assert response.status_code == 200
