"""Which hosts the server fetches sources from: every non-global address is internal."""

from __future__ import annotations

import ipaddress

import pytest

from racetrack_core.source_hosts import SourceHostError, check_url, is_internal


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.17.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata services
        "100.100.100.200",  # one in the shared (carrier-grade NAT) range
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (an address to refuse, not one to bind)
        "255.255.255.255",
        "224.0.0.1",
        "198.18.0.1",
        "::",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::127.0.0.1",  # IPv4-compatible
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b:1::a00:1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "2002:5db8:d822::",  # 6to4, even of a global address: a deprecated tunnel
    ],
)
def test_internal_addresses(address: str) -> None:
    assert is_internal(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "2a00:1450:4001::200e"]
)
def test_global_addresses(address: str) -> None:
    assert not is_internal(ipaddress.ip_address(address))


def test_a_checked_url_returns_the_addresses_to_connect_to() -> None:
    assert check_url("https://93.184.216.34/x.git", [], "the git URL") == ["93.184.216.34"]
    assert check_url("http://127.0.0.1:8080/x.git", ["127.0.0.1:8080"], "the git URL") == []


def test_a_name_is_judged_by_what_it_resolves_to() -> None:
    with pytest.raises(SourceHostError, match=r"'http://localhost/x\.git' is on a loopback"):
        check_url("http://localhost/x.git", [], "the git URL")
    check_url("http://localhost/x.git", ["localhost"], "the git URL")
