"""Which hosts a server may fetch sources from: loopback and private addresses need allowing.

A URL that a user hands to the server (a job's ``git.remote``, a plugin's package index or git
repository) makes the server open a connection; one to a loopback, private, link-local,
shared (carrier-grade NAT) or otherwise non-global address could reach services that only the
server can reach (a database, a cloud's metadata service at 169.254.169.254). Such hosts are
refused unless the setting ``source_allowed_hosts`` (a comma-separated list of host names or
addresses, each optionally with ``:port``) names them. Every refusal is one sentence, decided
before any connection is made, so that it tells nothing about which ports answer.

A name is judged by every address it resolves to; an IPv6 address that carries an IPv4 one
(IPv4-mapped or -compatible, NAT64) is judged by that IPv4 address too, and the deprecated
6to4 and Teredo tunnels are refused whatever they carry. The
addresses that were checked are returned, so that the caller can connect to those and no other
(a name whose DNS answer changes between the check and the connection gains nothing). Messages
never carry a URL's ``user:password@``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from racetrack_core.errors import RacetrackError
from racetrack_core.redaction import mask_url_credentials

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class SourceHostError(RacetrackError):
    """A URL whose host the server may not fetch from; the message says how to allow it."""


def allowed_hosts(setting: str) -> frozenset[str]:
    """The entries of ``source_allowed_hosts``, lower case, blanks dropped."""
    return frozenset(entry.strip().lower() for entry in setting.split(",") if entry.strip())


def check_url(url: str, allowed: Iterable[str], what: str) -> list[str]:
    """Raise SourceHostError if ``url``'s host is not a global address (by address or by what
    its name resolves to) and ``allowed`` names neither the host nor host:port.

    Return the addresses the host was found to stand for: empty when it is allowed by name or
    does not resolve (fetching it then fails with its own error). ``what`` names the URL in
    the message (``the package index``, ``the git URL``).
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    shown = mask_url_credentials(url)
    if not host:
        raise SourceHostError(f"{what} '{shown}' has no host name; give a full URL")
    try:
        port = parts.port
    except ValueError:
        raise SourceHostError(f"{what} '{shown}' has an invalid port") from None
    permitted = set(allowed)
    if host in permitted or (port is not None and f"{host}:{port}" in permitted):
        return []
    addresses = resolve(host)
    internal = sorted(str(address) for address in addresses if is_internal(address))
    if internal:
        entry = host if port is None else f"{host}:{port}"
        raise SourceHostError(
            f"{what} '{shown}' is on a loopback or private address ({', '.join(internal)}), "
            f"which the server does not fetch from unless allowed: add '{entry}' to the "
            "setting source_allowed_hosts (RACETRACK_SOURCE_ALLOWED_HOSTS)"
        )
    return sorted(str(address) for address in addresses)


def resolve(host: str) -> set[IPAddress]:
    """The addresses ``host`` stands for: itself when it is an address, else what the system's
    resolver answers (the same resolver, and so the same spellings such as ``127.1`` or
    ``2130706433``, that git and curl use). Empty when the name does not resolve."""
    try:
        return {ipaddress.ip_address(host.strip("[]"))}
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError):
        return set()
    return {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}


def is_internal(address: IPAddress) -> bool:
    """Whether the server must not connect to ``address`` unless allowed: anything but a
    global unicast address, or an IPv6 address that carries an IPv4 one that is internal."""
    if not address.is_global or address.is_multicast:
        return True
    if isinstance(address, ipaddress.IPv6Address):
        if address.sixtofour is not None or address.teredo is not None:
            return True  # deprecated tunnels; Python 3.11.2 calls every one private, 3.11.7 not
        return any(is_internal(inner) for inner in _embedded_ipv4(address))
    return False


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address is a wrapper of (mapped, compatible, NAT64); Python's
    ``is_global`` judges some of these by their IPv6 prefix alone."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if int(address) >> 32 == 0:  # ::a.b.c.d, the deprecated IPv4-compatible form
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if any(address in network for network in _NAT64):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found
