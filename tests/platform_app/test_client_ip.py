"""The client's address: X-Forwarded-For believed only from TRUSTED_PROXIES, read from the right."""

from __future__ import annotations

import ipaddress

import pytest
from django.test import RequestFactory

from platform_app.client_ip import client_address

PROXIES = (ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("2001:db8:ffff::/48"))


def _address(peer: str, forwarded: str | None = None) -> str:
    request = RequestFactory().get("/", REMOTE_ADDR=peer)
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(request)


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.0.0.2", "203.0.113.7", "203.0.113.7"),  # one trusted proxy
        ("10.0.0.2", "1.2.3.4, 203.0.113.7", "203.0.113.7"),  # what the client wrote itself is skipped
        ("10.0.0.2", "203.0.113.7, 10.0.0.9", "203.0.113.7"),  # two trusted proxies in a chain
        ("10.0.0.2", "  203.0.113.7 ", "203.0.113.7"),
        ("10.0.0.2", "2001:db8::5", "2001:db8::5"),
        ("::ffff:10.0.0.2", "203.0.113.7", "203.0.113.7"),  # an IPv4 peer on a dual-stack socket
        ("2001:db8:ffff::1", "203.0.113.7", "203.0.113.7"),
        ("10.0.0.2", "", "10.0.0.2"),  # a proxy that sent nothing: the proxy is all we know
        ("10.0.0.2", "not-an-address", "10.0.0.2"),
        ("10.0.0.2", "203.0.113.7, garbage", "10.0.0.2"),  # unreadable at the right: nothing to its left counts
        ("10.0.0.2", "garbage, 203.0.113.7", "203.0.113.7"),
        ("10.0.0.2", "10.0.0.7, 10.0.0.8", "10.0.0.7"),  # only proxies: the left-most one they vouched for
        ("198.51.100.9", "203.0.113.7", "198.51.100.9"),  # not a trusted proxy: the header is ignored
    ],
)
def test_the_client_address_behind_trusted_proxies(settings, peer, forwarded, client):
    settings.TRUSTED_PROXIES = PROXIES
    assert _address(peer, forwarded) == client


def test_with_no_trusted_proxy_the_header_is_ignored(settings):
    settings.TRUSTED_PROXIES = ()
    assert _address("10.0.0.2", "203.0.113.7") == "10.0.0.2"
