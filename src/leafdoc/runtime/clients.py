"""Who a client is, for the limits kept per client (feedback, wrong admin tokens, kept photos, the page's queue).

An IPv4 address is one client. An IPv6 address is not: a home or phone network gets a whole /64 and its devices pick
new addresses in it at will (privacy extensions), so one client could take a fresh limit with every request. The
/64 is the client, as rate limiters commonly count IPv6 (security round 4: "many addresses, an IPv6 prefix")."""

from __future__ import annotations

import ipaddress

IPV6_PREFIX = 64


def client_key(address: str) -> str:
    """`address` as the limits count it: an IPv4 address as it is, an IPv6 one as its /64; anything else (a name, a
    Unix socket's empty address) as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is that IPv4 client
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return address
