"""Who a failed lookup counts against: the client's address and its network (spec §10).

One IPv6 subscriber gets a whole /64, so an IPv6 "address" is its /64; a network is an IPv4 /24
or an IPv6 /48 (one site). A string that is no IP address (a shell that passes its own client
key) counts as an address of its own, with no network.

    >>> client_keys("203.0.113.9")
    ('addr:203.0.113.9', 'net:203.0.113.0/24')
    >>> client_keys("2001:db8:1:2:3:4:5:6")
    ('addr:2001:db8:1:2::/64', 'net:2001:db8:1::/48')
"""

from __future__ import annotations

import ipaddress

__all__ = ["client_keys"]

_PREFIX = {4: (32, 24), 6: (64, 48)}  # (the address, its network) in prefix bits


def client_keys(address: str) -> tuple[str, str | None]:
    """The address key and the network key (None when ``address`` is not an IP address)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "addr:" + address, None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    own, network = _PREFIX[ip.version]
    host = ipaddress.ip_network(f"{ip}/{own}", strict=False)
    net = ipaddress.ip_network(f"{ip}/{network}", strict=False)
    return (f"addr:{ip}" if own == ip.max_prefixlen else f"addr:{host}"), f"net:{net}"
