"""Which hosts a server may fetch sources from: loopback and private addresses need allowing.

A URL that a user hands to the server (a plugin's package index or git repository) makes the
server open a connection; one to a loopback, private or link-local address could reach
services that only the server can reach. Such hosts are refused unless the setting
``source_allowed_hosts`` (a comma-separated list of host names or addresses, each optionally
with ``:port``) names them. Messages never carry a URL's ``user:password@``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from racetrack_core.errors import RacetrackError
from racetrack_core.source.git import scrub


class SourceHostError(RacetrackError):
    """A URL whose host the server may not fetch from; the message says how to allow it."""


def allowed_hosts(setting: str) -> frozenset[str]:
    """The entries of ``source_allowed_hosts``, lower case, blanks dropped."""
    return frozenset(entry.strip().lower() for entry in setting.split(",") if entry.strip())


def check_url(url: str, allowed: Iterable[str], what: str) -> None:
    """Raise SourceHostError if ``url``'s host is loopback, private or link-local (by address
    or by what its name resolves to) and ``allowed`` names neither the host nor host:port.

    ``what`` names the URL in the message (``the package index``, ``the git URL``).
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    shown = scrub(url, ())
    if not host:
        raise SourceHostError(f"{what} '{shown}' has no host name; give a full URL")
    try:
        port = parts.port
    except ValueError:
        raise SourceHostError(f"{what} '{shown}' has an invalid port") from None
    permitted = set(allowed)
    if host in permitted or (port is not None and f"{host}:{port}" in permitted):
        return
    internal = internal_addresses(host)
    if internal:
        entry = host if port is None else f"{host}:{port}"
        raise SourceHostError(
            f"{what} '{shown}' is on a loopback or private address ({', '.join(internal)}), "
            f"which the server does not fetch from unless allowed: add '{entry}' to the "
            "setting source_allowed_hosts (RACETRACK_SOURCE_ALLOWED_HOSTS)"
        )


def internal_addresses(host: str) -> list[str]:
    """The loopback, private, link-local or unspecified addresses ``host`` stands for.

    A name that does not resolve has none (fetching it fails later, with its own error).
    """
    try:
        addresses = {ipaddress.ip_address(host.strip("[]"))}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return []
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    return sorted(str(address) for address in addresses if _internal(address))


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _internal(address.ipv4_mapped)
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_unspecified
        or address.is_reserved
    )
