"""Requests to addresses a merchant chose (webhook URLs) must not reach the platform's network.

A URL is refused when its host is, or resolves to, anything but a public address: loopback,
private, link-local (cloud metadata at 169.254.169.254), shared (100.64/10), unique-local,
reserved, multicast. Every resolved address must be public (a name answering one public and one
private address is refused), and the caller then connects to the address it checked
(``pinned``), so a second DNS answer cannot swap it. Local development allows the networks
listed in ``WEBHOOK_URL_ALLOWLIST`` (e.g. ``127.0.0.1/32``), nothing else.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeUrl(ValueError):
    """The URL may not be called; the message says why (safe to show to the caller)."""


@dataclass(frozen=True, slots=True)
class Pinned:
    """A checked URL: connect to ``address``, send ``host`` as Host and TLS server name."""

    url: str
    host: str
    address: str


def parse_allowlist(entries: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry]


def address_allowed(address: IPAddress, allowlist: Iterable[Network] = ()) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowlist):
        return True
    return address.is_global and not address.is_multicast


def _parts(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("the URL must be http(s) with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl("the URL's port is not valid") from None
    return parts.scheme, parts.hostname, port


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def _refuse_unless_allowed(addresses: list[IPAddress], allowlist: list[Network]) -> None:
    for address in addresses:
        if not address_allowed(address, allowlist):
            raise UnsafeUrl(f"the URL's host is not a public address ({address})")


async def check_url(url: str, allowlist: list[Network], *, must_resolve: bool) -> Pinned | None:
    """The pinned target of ``url``; raises UnsafeUrl. With ``must_resolve=False`` a name that
    does not resolve now passes (None): it is checked again when it is called."""
    _, host, port = _parts(url)
    literal = _literal(host)
    if literal is not None:
        _refuse_unless_allowed([literal], allowlist)
        return Pinned(url=url, host=host, address=str(literal))
    try:
        addresses = await resolve(host, port)
    except OSError:
        if must_resolve:
            raise UnsafeUrl("the URL's host does not resolve") from None
        return None
    if not addresses:
        raise UnsafeUrl("the URL's host does not resolve")
    _refuse_unless_allowed(addresses, allowlist)
    return Pinned(url=url, host=host, address=str(addresses[0]))
