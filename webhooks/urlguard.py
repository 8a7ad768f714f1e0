"""A webhook URL is a way into the platform's network: which ones may be registered and called.

Production accepts only ``https`` URLs whose every resolved address is public (globally routable),
checked when the URL is registered and again before every delivery, and the delivery connects to
the address that was checked (no second DNS lookup an attacker could answer differently).

- Names are resolved with dnspython under one overall time bound (``WEBHOOK_DNS_TIMEOUT_MS``), on
  the request path as at delivery time: a name server that never answers costs that long, once.
  ``WEBHOOK_DNS_SERVERS`` names the servers (default: the system's, from /etc/resolv.conf);
  ``localhost`` names are loopback without a query (RFC 6761).
- A refusal tells the merchant only that the host "does not resolve to a public address"; what it
  resolved to, and why that is refused, goes to the server log (``UnsafeUrl.detail``).
- Link-local addresses (169.254/16 with the cloud metadata service, fe80::/10) and the metadata
  addresses of the clouds we know are refused whatever the settings say.
- IPv6 addresses that carry an IPv4 address (IPv4-mapped and -compatible, 6to4, Teredo, NAT64) are
  judged by the IPv4 address inside, the same way on every Python version.
- ``Policy.allow_private`` (``WEBHOOK_ALLOW_PRIVATE_URLS``, the demo and the tests; refused by the
  settings in production) also admits ``http`` and loopback or private addresses;
  ``Policy.private_networks`` (``WEBHOOK_PRIVATE_NETWORKS``) admits those networks only, over
  ``http`` or ``https``: an operator's explicit choice, allowed in production.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import dns.exception
import dns.inet
import dns.resolver

log = logging.getLogger(__name__)

MAX_URL_LENGTH = 500
NOT_PUBLIC = "the host does not resolve to a public address"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never called, whatever the settings: link-local (cloud metadata lives at 169.254.169.254) and the
# metadata endpoints clouds put elsewhere (Alibaba Cloud's 100.100.100.200, AWS's IPv6 fd00:ec2::254).
ALWAYS_REFUSED: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("100.100.100.200/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
# RFC 8215's local-use NAT64 prefix: the IPv4 address may sit at several offsets; never public.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class UnsafeUrl(ValueError):
    """The URL may not be registered or called. ``str()`` is what the merchant may read; ``detail``
    (the resolved addresses, the reason) is for the server log only."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


@dataclass(frozen=True, slots=True)
class Policy:
    allow_private: bool = False
    private_networks: tuple[IPNetwork, ...] = ()
    dns_servers: tuple[str, ...] = ()  # "host" or "host:port" ("[v6]:port"); empty: the system's
    dns_timeout: float = 2.0

    @property
    def http_allowed(self) -> bool:
        return self.allow_private or bool(self.private_networks)


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


def target_parse(url: object, *, policy: Policy) -> Target:
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
    allowed = ("https", "http") if policy.http_allowed else ("https",)
    if scheme not in allowed:
        raise UnsafeUrl("the URL must use https" if not policy.http_allowed else "the URL must use http or https")
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


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, Teredo's server, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[0]  # the Teredo server; the client part is checked by teredo_client
    if address in _NAT64_WELL_KNOWN or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IPAddress, *, policy: Policy) -> str | None:
    """Why this address may not be called, or None (for the log: the merchant never sees it)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return f"{address} is a local-use NAT64 address"
        if address.teredo is not None:
            problem = address_problem(address.teredo[1], policy=policy)
            if problem:
                return f"{address} (Teredo client): {problem}"
        inner = embedded_ipv4(address)
        if inner is not None:
            problem = address_problem(inner, policy=policy)
            return f"{address} carries {problem}" if problem else None
    if any(address in network for network in ALWAYS_REFUSED if network.version == address.version):
        return f"{address} is link-local or a cloud metadata address"
    if address.is_unspecified or address.is_multicast:
        return f"{address} is not a host address"
    if policy.allow_private:
        return None
    if any(address in network for network in policy.private_networks if network.version == address.version):
        return None
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_private or not address.is_global or address.is_reserved:
        return f"{address} is not a public address"
    return None


def _resolver(policy: Policy) -> dns.resolver.Resolver:
    if not policy.dns_servers:
        return dns.resolver.Resolver()  # /etc/resolv.conf
    resolver = dns.resolver.Resolver(configure=False)
    nameservers: list[str] = []
    ports: dict[str, int] = {}
    for server in policy.dns_servers:
        host, port = _host_port(server)
        nameservers.append(host)
        if port is not None:
            ports[host] = port
    resolver.nameservers = nameservers
    resolver.nameserver_ports = ports
    return resolver


def _host_port(server: str) -> tuple[str, int | None]:
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if server.count(":") == 1:
        host, _, port = server.partition(":")
        return host, int(port)
    return server, None


def _lookup(host: str, policy: Policy) -> list[str]:
    """The host's A and AAAA addresses, both queries within one ``dns_timeout`` in all."""
    if dns.inet.is_address(host):
        return [host]
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return ["127.0.0.1", "::1"]
    resolver = _resolver(policy)
    deadline = time.monotonic() + policy.dns_timeout
    found: list[str] = []
    for rdtype in ("A", "AAAA"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UnsafeUrl(NOT_PUBLIC, f"resolving {host!r} took longer than {policy.dns_timeout:g}s")
        try:
            answer = resolver.resolve(host, rdtype, lifetime=remaining, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.Timeout:
            raise UnsafeUrl(NOT_PUBLIC, f"resolving {host!r} took longer than {policy.dns_timeout:g}s") from None
        except dns.exception.DNSException as exc:
            raise UnsafeUrl(NOT_PUBLIC, f"resolving {host!r} failed: {type(exc).__name__}") from None
        found.extend(str(rdata.address) for rdata in answer)
    return found


def resolve(target: Target, *, policy: Policy) -> list[str]:
    """Every address the host resolves to, all checked; the delivery connects to the first."""
    addresses: list[str] = []
    for text in _lookup(target.host, policy):
        text = text.split("%", 1)[0]  # drop an IPv6 zone id
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise UnsafeUrl(NOT_PUBLIC, f"the host {target.host!r} has no A or AAAA record")
    for text in addresses:
        problem = address_problem(ipaddress.ip_address(text), policy=policy)
        if problem:
            raise UnsafeUrl(NOT_PUBLIC, f"the host {target.host!r} resolves to {problem}")
    if target.scheme == "http" and not policy.allow_private:
        # http only to the operator's private networks (WEBHOOK_PRIVATE_NETWORKS), never to the internet.
        for text in addresses:
            address = ipaddress.ip_address(text)
            if not any(address in n for n in policy.private_networks if n.version == address.version):
                raise UnsafeUrl("the URL must use https", f"http to {text}, outside WEBHOOK_PRIVATE_NETWORKS")
    return addresses


def url_check(url: object, *, policy: Policy) -> tuple[Target, list[str]]:
    """The parsed URL and the checked addresses, or UnsafeUrl (its detail logged here)."""
    try:
        target = target_parse(url, policy=policy)
        return target, resolve(target, policy=policy)
    except UnsafeUrl as exc:
        log.warning("webhook URL refused: %s", exc.detail)
        raise
