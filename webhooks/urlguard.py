"""A webhook URL is a way into the platform's network: which ones may be registered and called.

Production accepts only ``https`` URLs whose every resolved address is public (globally routable),
checked when the URL is registered and again before every delivery, and the delivery connects to
the address that was checked (no second DNS lookup an attacker could answer differently). The
setting ``WEBHOOK_ALLOW_PRIVATE_URLS`` (the demo, the tests) also admits ``http`` and loopback or
private addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 500

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """The URL may not be registered or called; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str  # as written (IPv6 without brackets)
    port: int
    path: str  # path and query, what goes on the request line

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def target_parse(url: object, *, allow_private: bool) -> Target:
    """Check the URL's shape (no DNS): scheme, host, port, no credentials, no fragment."""
    if not isinstance(url, str) or not url:
        raise UnsafeUrl("the URL must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"the URL must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UnsafeUrl("the URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"the URL is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_private else ("https",)
    if scheme not in allowed:
        raise UnsafeUrl("the URL must use https" if not allow_private else "the URL must use http or https")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("the URL must not carry a user name or password")
    if parts.fragment:
        raise UnsafeUrl("the URL must not have a #fragment")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeUrl("the URL must name a host")
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        raise UnsafeUrl("write an internationalised host name in its xn-- (punycode) form") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80), path=path)


def address_problem(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why this address may not be called, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified or address.is_multicast:
        return f"{address} is not a host address"
    if allow_private:
        return None
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_private or not address.is_global or address.is_reserved:
        return f"{address} is not a public address"
    return None


def resolve(target: Target, *, allow_private: bool) -> list[str]:
    """Every address the host resolves to, all checked; the delivery connects to the first."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UnsafeUrl(f"the host {target.host!r} does not resolve ({exc.__class__.__name__})") from None
    addresses: list[str] = []
    for *_, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise UnsafeUrl(f"the host {target.host!r} does not resolve")
    for text in addresses:
        problem = address_problem(ipaddress.ip_address(text), allow_private=allow_private)
        if problem:
            raise UnsafeUrl(f"the host {target.host!r} resolves to {problem}")
    return addresses


def url_check(url: object, *, allow_private: bool) -> tuple[Target, list[str]]:
    target = target_parse(url, allow_private=allow_private)
    return target, resolve(target, allow_private=allow_private)
