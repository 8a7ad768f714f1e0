"""Which webhook URLs may be registered and called: production takes public https only."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterator

import pytest

from tests.webhooks.dnsserver import NameServer, start_blackhole, start_name_server
from webhooks.urlguard import NOT_PUBLIC, Policy, UnsafeUrl, address_problem, target_parse, url_check

PRODUCTION = Policy(dns_timeout=2.0)
DEMO = Policy(allow_private=True, dns_timeout=2.0)


@pytest.fixture
def names() -> Iterator[NameServer]:
    server = start_name_server(
        {
            "hooks.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
            "internal.example.com": ["10.0.0.7"],
            "metadata.example.com": ["169.254.169.254"],
            "mixed.example.com": ["93.184.216.34", "127.0.0.1"],
            "v6only.example.com": ["fe80::1"],
        }
    )
    yield server
    server.close()


def _with(policy: Policy, server: NameServer) -> Policy:
    return Policy(
        allow_private=policy.allow_private,
        private_networks=policy.private_networks,
        dns_servers=(server.address,),
        dns_timeout=policy.dns_timeout,
    )


REFUSED_IN_PRODUCTION = [
    pytest.param("http://93.184.216.34/hook", id="plain-http"),
    pytest.param("https://127.0.0.1/hook", id="loopback"),
    pytest.param("https://localhost/hook", id="localhost-name"),
    pytest.param("https://10.1.2.3/hook", id="private-10"),
    pytest.param("https://172.16.0.1/hook", id="private-172"),
    pytest.param("https://192.168.1.1/hook", id="private-192"),
    pytest.param("https://169.254.169.254/latest/meta-data", id="cloud-metadata-link-local"),
    pytest.param("https://100.64.0.1/hook", id="carrier-grade-nat"),
    pytest.param("https://0.0.0.0/hook", id="unspecified"),
    pytest.param("https://[::1]/hook", id="ipv6-loopback"),
    pytest.param("https://[::ffff:127.0.0.1]/hook", id="ipv4-mapped-loopback"),
    pytest.param("https://[fd00::1]/hook", id="ipv6-unique-local"),
    pytest.param("https://2130706433/hook", id="decimal-loopback"),
    pytest.param("https://0x7f000001/hook", id="hex-loopback"),
    pytest.param("https://user:pw@93.184.216.34/hook", id="credentials"),
    pytest.param("ftp://93.184.216.34/hook", id="ftp"),
    pytest.param("https:///hook", id="no-host"),
    pytest.param("https://93.184.216.34/hook#x", id="fragment"),
    pytest.param("https://93.184.216.34/ho ok", id="space"),
    pytest.param("https://93.184.216.34:99999/hook", id="bad-port"),
    pytest.param("https://" + "a" * 600 + ".example/", id="too-long"),
    pytest.param("", id="empty"),
    pytest.param(None, id="none"),
    pytest.param(["https://93.184.216.34/"], id="list"),
    pytest.param("https://no-such-host.invalid/hook", id="does-not-resolve"),
    pytest.param("https://internal.example.com/hook", id="name-to-private"),
    pytest.param("https://mixed.example.com/hook", id="one-of-the-names-addresses-is-loopback"),
    pytest.param("https://[2002:7f00:1::1]/hook", id="6to4-carrying-loopback"),
    pytest.param("https://[2002:a9fe:a9fe::1]/hook", id="6to4-carrying-metadata"),
    pytest.param("https://[2002:0a00:0001::1]/hook", id="6to4-carrying-private"),
    pytest.param("https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook", id="teredo-client-10.0.0.1"),
    pytest.param("https://[2001:0:7f00:1:8000:63bf:a25f:b9cb]/hook", id="teredo-server-loopback"),
    pytest.param("https://[64:ff9b::7f00:1]/hook", id="nat64-carrying-loopback"),
    pytest.param("https://[64:ff9b::a9fe:a9fe]/hook", id="nat64-carrying-metadata"),
    pytest.param("https://[64:ff9b:1::5db8:d822]/hook", id="nat64-local-use"),
    pytest.param("https://[::7f00:1]/hook", id="ipv4-compatible-loopback"),
    pytest.param("https://100.100.100.200/latest/meta-data", id="alibaba-cloud-metadata"),
]


@pytest.mark.parametrize("url", REFUSED_IN_PRODUCTION)
def test_production_refuses_non_public_or_malformed_urls(url, names):
    with pytest.raises(UnsafeUrl):
        url_check(url, policy=_with(PRODUCTION, names))


@pytest.mark.parametrize(
    "url",
    [
        "https://[2002:5db8:d822::1]/hook",  # 6to4 carrying 93.184.216.34: judged by that address
        "https://[64:ff9b::5db8:d822]/hook",  # NAT64 (DNS64) carrying 93.184.216.34
        "https://hooks.example.com/hook",
    ],
)
def test_addresses_that_carry_a_public_ipv4_address_are_judged_by_it_on_every_python(url, names):
    url_check(url, policy=_with(PRODUCTION, names))


def test_a_public_https_address_is_accepted_and_the_checked_address_is_what_gets_called():
    target, addresses = url_check("https://93.184.216.34:8443/hooks/kf?x=1", policy=PRODUCTION)
    assert (target.scheme, target.host, target.port, target.path) == ("https", "93.184.216.34", 8443, "/hooks/kf?x=1")
    assert addresses == ["93.184.216.34"]
    assert target.host_header == "93.184.216.34:8443"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hook", "http://localhost/hook", "https://10.0.0.1/h", "https://internal.example.com/"],
)
def test_the_demo_setting_allows_loopback_private_and_http(url, names):
    target, addresses = url_check(url, policy=_with(DEMO, names))
    assert target.host in url
    assert addresses


@pytest.mark.parametrize(
    "url",
    [
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "gopher://127.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://metadata.example.com/",
        "http://v6only.example.com/",
        "http://[::ffff:169.254.169.254]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://100.100.100.200/",
    ],
)
def test_even_the_demo_setting_refuses_link_local_metadata_and_non_host_addresses(url, names):
    with pytest.raises(UnsafeUrl):
        url_check(url, policy=_with(DEMO, names))


def test_private_networks_admit_those_networks_only_over_http_or_https(names):
    policy = _with(Policy(private_networks=(ipaddress.ip_network("10.0.0.0/8"),)), names)
    assert url_check("http://internal.example.com/hook", policy=policy)[1] == ["10.0.0.7"]
    assert url_check("https://10.9.9.9/hook", policy=policy)[1] == ["10.9.9.9"]
    for refused in ("http://127.0.0.1/", "https://192.168.1.1/", "http://hooks.example.com/", "http://169.254.1.1/"):
        with pytest.raises(UnsafeUrl):
            url_check(refused, policy=policy)
    wide = _with(Policy(private_networks=(ipaddress.ip_network("169.254.0.0/16"),)), names)
    with pytest.raises(UnsafeUrl):
        url_check("http://169.254.169.254/", policy=wide)  # link-local: not even when listed


def test_the_refusal_names_no_address_and_the_log_has_the_details(names, caplog):
    caplog.set_level(logging.WARNING, logger="webhooks.urlguard")
    for url in ("https://internal.example.com/h", "https://127.0.0.1/", "https://no-such-host.invalid/"):
        with pytest.raises(UnsafeUrl) as refused:
            url_check(url, policy=_with(PRODUCTION, names))
        assert str(refused.value) == NOT_PUBLIC
        assert "10.0.0.7" not in str(refused.value) and "127.0.0.1" not in str(refused.value)
    assert "10.0.0.7 is not a public address" in caplog.text
    assert "127.0.0.1 is a loopback address" in caplog.text
    with pytest.raises(UnsafeUrl, match="https"):
        target_parse("http://93.184.216.34/", policy=PRODUCTION)
    assert address_problem(ipaddress.ip_address("8.8.8.8"), policy=PRODUCTION) is None


def test_a_name_server_that_never_answers_costs_the_dns_bound_once():
    blackhole = start_blackhole()
    try:
        host, port = blackhole.getsockname()
        policy = Policy(dns_servers=(f"{host}:{port}",), dns_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(UnsafeUrl) as refused:
            url_check("https://slow.example.com/hook", policy=policy)
        spent = time.monotonic() - started
    finally:
        blackhole.close()
    assert str(refused.value) == NOT_PUBLIC
    assert "took longer" in refused.value.detail
    assert 0.4 < spent < 3.0, spent  # A and AAAA share the bound: not twice, never the resolver's default
