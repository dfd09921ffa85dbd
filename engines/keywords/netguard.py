"""Never a proxy into private networks: which addresses a crawl may reach, checked after DNS resolution.

The check lives in the resolver the crawler's connector uses, so the address that was checked is the
address connected to (a DNS answer that changes between a check and the connection cannot slip
through). aiohttp does not call the resolver for IP-literal hosts: `check_host` covers those.
"""
from __future__ import annotations

import ipaddress
import socket
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from .model import UnsafeURL

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"})
CGNAT = ipaddress.ip_network("100.64.0.0/10")
METADATA_V6 = ipaddress.ip_address("fd00:ec2::254")
# The refusal says what to do: a first crawl is usually of a local site.
ALLOW_SETTING = "ALLOW_PRIVATE_URLS"
ALLOW_HINT = f"set {ALLOW_SETTING}=true to crawl private or local addresses"


def is_public(address: str) -> bool:
    """True for a globally routable unicast address (not loopback, private, link-local, metadata…)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip == METADATA_V6 or (isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def check_host(host: str) -> None:
    """Refuse metadata host names and non-public IP literals; other names are checked once resolved."""
    name = host.strip("[]").rstrip(".").lower()
    if name in METADATA_HOSTS or name == "localhost" or name.endswith(".localhost"):
        raise UnsafeURL(f"host {name!r} is not a public address; {ALLOW_HINT}", ALLOW_SETTING)
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return
    if not is_public(name):
        raise UnsafeURL(f"address {name} is not public; {ALLOW_HINT}", ALLOW_SETTING)


class GuardedResolver(AbstractResolver):
    """The default resolver, refusing every answer set that holds a non-public address."""

    def __init__(self, allow_private: bool = False) -> None:
        self.allow_private = allow_private
        self._resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        if not self.allow_private:
            check_host(host)
        answers = await self._resolver.resolve(host, port, family)
        if not self.allow_private:
            bad = [a["host"] for a in answers if not is_public(a["host"])]
            if bad:  # one private answer is enough: the connector might pick it
                raise UnsafeURL(f"{host} resolves to a non-public address ({bad[0]}); {ALLOW_HINT}", ALLOW_SETTING)
        return answers

    async def close(self) -> None:
        await self._resolver.close()
