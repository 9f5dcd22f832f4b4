"""Just enough IP header parsing for the relay's policy: version, source and destination addresses."""

from __future__ import annotations

import ipaddress

#: The lab's address range: RFC 2544 benchmarking addresses, never routed on the Internet.
LAB_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
_LAB_NET = int(LAB_NETWORK.network_address)
_LAB_SHIFT = 32 - LAB_NETWORK.prefixlen


def ip_version(packet: bytes) -> int:
    """4 or 6 (or whatever the first nibble says; 0 for an empty packet)."""
    return packet[0] >> 4 if packet else 0


def ipv4_addresses(packet: bytes) -> tuple[int, int] | None:
    """(source, destination) of an IPv4 packet as integers, None if it is not a well-formed IPv4 header."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or (packet[0] & 0x0F) < 5:
        return None
    return int.from_bytes(packet[12:16], "big"), int.from_bytes(packet[16:20], "big")


def in_lab(address: int) -> bool:
    return address >> _LAB_SHIFT == _LAB_NET >> _LAB_SHIFT


def address_int(address: str) -> int:
    return int(ipaddress.IPv4Address(address))


def address_str(address: int) -> str:
    return str(ipaddress.IPv4Address(address))


def is_udp(packet: bytes) -> bool:
    """An IPv4 packet carrying UDP (protocol 17)."""
    return len(packet) > 9 and packet[0] >> 4 == 4 and packet[9] == 17


def uplink_allowed(packet: bytes, site: int) -> bool:
    """Site -> server: IPv4, from the site's own address, to an address inside the lab."""
    addresses = ipv4_addresses(packet)
    return addresses is not None and addresses[0] == site and in_lab(addresses[1])


def downlink_allowed(packet: bytes, site: int) -> bool:
    """Server -> site: IPv4, from inside the lab, to the site's address."""
    addresses = ipv4_addresses(packet)
    return addresses is not None and addresses[1] == site and in_lab(addresses[0])


def describe(packet: bytes) -> str:
    """A short description for debug logs: version, protocol, addresses, size."""
    addresses = ipv4_addresses(packet)
    if addresses is None:
        return f"IPv{ip_version(packet)} packet of {len(packet)} bytes"
    return f"IPv4 proto {packet[9]} {address_str(addresses[0])} -> {address_str(addresses[1])}, {len(packet)} bytes"
