"""Who the client is when a reverse proxy stands in front: ``X-Forwarded-For``, from trusted proxies only.

Behind a proxy every request's peer (``REMOTE_ADDR``) is the proxy, so per-client limits (the
authorize throttle, django-axes' login lockout) would see one client. The proxy appends the address
it saw to ``X-Forwarded-For``; a client can put anything before that. So the header is read only
when the peer is one of ``TRUSTED_PROXIES`` (an explicit list of addresses and CIDR networks,
default empty: the header is ignored), from the right, skipping hops that are trusted proxies too:
the first address that is not is the client. Anything unreadable falls back to the nearest
address a trusted proxy vouched for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # An IPv4 peer on a dual-stack socket reads ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, proxies: tuple[_Network, ...]) -> bool:
    return address is not None and any(address in network for network in proxies)


def client_address(request: HttpRequest) -> str:
    """The client's address: the peer, or what the trusted proxies in front of us say it is."""
    known = getattr(request, "client_ip", None)
    if isinstance(known, str):
        return known
    peer = request.META.get("REMOTE_ADDR", "") or ""
    proxies: tuple[_Network, ...] = settings.TRUSTED_PROXIES
    if not proxies or not _trusted(_address(peer), proxies):
        return peer
    client = peer
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _address(hop)
        if address is None:
            break  # not an address: what lies to its left cannot be trusted either
        client = str(address)
        if not _trusted(address, proxies):
            break
    return client


def axes_client_ip(request: HttpRequest) -> str:
    """django-axes' AXES_CLIENT_IP_CALLABLE: the same client address as every other limit."""
    return client_address(request)


class ClientAddressMiddleware:
    """Sets ``request.client_ip`` once, before any view or limit reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.client_ip = client_address(request)  # type: ignore[attr-defined]
        return self.get_response(request)
