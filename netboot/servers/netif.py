"""Interface facts the transports need: index <-> name, IPv4 address and subnet, and ARP entries.

Linux ioctls, no subprocesses: SIOCGIFADDR/SIOCGIFNETMASK give an interface's primary IPv4 address and
mask; SIOCSARP lets the DHCP server unicast an OFFER to a client that has no address yet (RFC 2131 4.1),
as ISC dhcpd and dnsmasq do.
"""

from __future__ import annotations

import fcntl
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from netboot.mac import MacAddress

SIOCGIFADDR = 0x8915
SIOCGIFNETMASK = 0x891B
SIOCSARP = 0x8955
ATF_COM = 0x02
ARPHRD_ETHER = 1


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    index: int
    name: str
    address: IPv4Address | None
    network: IPv4Network | None


def _ifreq(name: str) -> bytes:
    return struct.pack("256s", name.encode()[:15])


def interface_info(name: str) -> InterfaceInfo:
    """Index, primary IPv4 address and subnet of ``name``; OSError if it does not exist."""
    index = socket.if_nametoindex(name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            addr = IPv4Address(fcntl.ioctl(sock.fileno(), SIOCGIFADDR, _ifreq(name))[20:24])
            mask = IPv4Address(fcntl.ioctl(sock.fileno(), SIOCGIFNETMASK, _ifreq(name))[20:24])
        except OSError:
            return InterfaceInfo(index, name, None, None)
    return InterfaceInfo(index, name, addr, IPv4Interface(f"{addr}/{mask}").network)


def interface_by_index(index: int) -> InterfaceInfo:
    return interface_info(socket.if_indextoname(index))


def all_interfaces() -> list[InterfaceInfo]:
    out = []
    for _index, name in socket.if_nameindex():
        try:
            out.append(interface_info(name))
        except OSError:
            continue
    return out


def default_server_ip() -> IPv4Address | None:
    """The first non-loopback interface address: what clients most likely reach us at."""
    for info in all_interfaces():
        if info.address is not None and not info.address.is_loopback:
            return info.address
    return None


def set_arp(sock: socket.socket, ifname: str, ip: IPv4Address, mac: MacAddress) -> None:
    """Add a complete ARP entry ``ip -> mac`` on ``ifname`` (needs CAP_NET_ADMIN)."""
    sockaddr_in = struct.pack("=HH4s8x", socket.AF_INET, 0, ip.packed)
    sockaddr_hw = struct.pack("=H6s8x", ARPHRD_ETHER, mac.packed)
    netmask = struct.pack("=16x")
    req = (
        sockaddr_in + sockaddr_hw + struct.pack("=i", ATF_COM) + netmask + struct.pack("16s", ifname.encode())
    )
    fcntl.ioctl(sock.fileno(), SIOCSARP, req)
