"""Which webhook URLs may be registered and called: production takes public https only."""

from __future__ import annotations

import ipaddress

import pytest

from webhooks.urlguard import UnsafeUrl, address_problem, target_parse, url_check

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
]


@pytest.mark.parametrize("url", REFUSED_IN_PRODUCTION)
def test_production_refuses_non_public_or_malformed_urls(url):
    with pytest.raises(UnsafeUrl):
        url_check(url, allow_private=False)


def test_a_public_https_address_is_accepted_and_the_checked_address_is_what_gets_called():
    target, addresses = url_check("https://93.184.216.34:8443/hooks/kf?x=1", allow_private=False)
    assert (target.scheme, target.host, target.port, target.path) == ("https", "93.184.216.34", 8443, "/hooks/kf?x=1")
    assert addresses == ["93.184.216.34"]
    assert target.host_header == "93.184.216.34:8443"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://localhost/hook", "https://10.0.0.1/h"])
def test_the_demo_setting_allows_loopback_private_and_http(url):
    target, addresses = url_check(url, allow_private=True)
    assert target.host in url
    assert addresses


@pytest.mark.parametrize("url", ["http://0.0.0.0/hook", "http://224.0.0.1/hook", "gopher://127.0.0.1/"])
def test_even_the_demo_setting_refuses_non_host_addresses_and_other_schemes(url):
    with pytest.raises(UnsafeUrl):
        url_check(url, allow_private=True)


def test_the_reason_names_the_problem():
    with pytest.raises(UnsafeUrl, match="loopback"):
        url_check("https://127.0.0.1/", allow_private=False)
    with pytest.raises(UnsafeUrl, match="https"):
        target_parse("http://93.184.216.34/", allow_private=False)
    assert address_problem(ipaddress.ip_address("8.8.8.8"), allow_private=False) is None
