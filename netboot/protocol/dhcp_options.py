"""The numbers of DHCP/BOOTP (RFC 2131, 2132 and the PXE/iPXE codes netboot uses) and option values.

Tables only: the ``op`` and message-type enums, the option codes, the fixed constants of the format, and
option values as bytes (``pack_*`` to write one, ``read_*`` to read one, which never raise: a malformed
value reads as None). :mod:`netboot.protocol.dhcp_packet` and the codec in :mod:`netboot.protocol.dhcp`
are built on these; callers import them from :mod:`netboot.protocol.dhcp`.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from ipaddress import IPv4Address

__all__ = [
    "BROADCAST_FLAG",
    "MAGIC_COOKIE",
    "MIN_MAX_SIZE",
    "MIN_PACKET_SIZE",
    "ZERO_IP",
    "MessageType",
    "Op",
    "Opt",
    "pack_ips",
    "pack_u16",
    "pack_u32",
    "read_ip",
    "read_text",
    "read_u16",
    "read_u32",
]


class Op(IntEnum):
    """BOOTP ``op`` (RFC 2131 section 2)."""

    BOOTREQUEST = 1
    BOOTREPLY = 2


class MessageType(IntEnum):
    """DHCP message type, option 53 (RFC 2132 section 9.6)."""

    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8


class Opt(IntEnum):
    """Option codes netboot reads or writes (RFC 2132 unless noted)."""

    PAD = 0
    SUBNET_MASK = 1
    ROUTER = 3
    DNS = 6
    HOSTNAME = 12
    DOMAIN_NAME = 15
    INTERFACE_MTU = 26
    BROADCAST = 28
    NTP_SERVERS = 42
    VENDOR_SPECIFIC = 43
    REQUESTED_IP = 50
    LEASE_TIME = 51
    OVERLOAD = 52
    MESSAGE_TYPE = 53
    SERVER_ID = 54
    PARAM_REQUEST = 55
    MESSAGE = 56
    MAX_SIZE = 57
    RENEWAL_T1 = 58
    REBINDING_T2 = 59
    VENDOR_CLASS = 60
    CLIENT_ID = 61
    TFTP_SERVER = 66
    BOOTFILE = 67
    USER_CLASS = 77  # RFC 3004
    RAPID_COMMIT = 80  # RFC 4039
    RELAY_AGENT = 82  # RFC 3046
    CLIENT_ARCH = 93  # RFC 4578
    CLIENT_NDI = 94  # RFC 4578
    UUID_GUID = 97  # RFC 4578
    DOMAIN_SEARCH = 119  # RFC 3397
    CLASSLESS_ROUTES = 121  # RFC 3442
    IPXE_ENCAP = 175  # iPXE's private encapsulated options
    END = 255


#: RFC 2131 section 3: the first four octets of the options field.
MAGIC_COOKIE = b"\x63\x82\x53\x63"
#: ``flags`` bit asking the server to broadcast its reply (RFC 2131 section 4.1).
BROADCAST_FLAG = 0x8000
#: BOOTP's minimum message (RFC 951 has a 64-byte vendor area): some PXE ROMs drop anything shorter.
MIN_PACKET_SIZE = 300
#: RFC 2131 section 2: every client accepts a 576-byte IP datagram.
MIN_MAX_SIZE = 576
#: 0.0.0.0, what clients send in most address fields: one shared object instead of one per field.
ZERO_IP = IPv4Address(0)

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


# -- writing option values -------------------------------------------------------------------------


def pack_ips(*addresses: IPv4Address) -> bytes:
    """Addresses as an option value (router, DNS, server id...)."""
    return b"".join(address.packed for address in addresses)


def pack_u16(value: int) -> bytes:
    return _U16.pack(value)


def pack_u32(value: int) -> bytes:
    """A 32-bit option value (lease time, T1, T2)."""
    return _U32.pack(value)


# -- reading option values: None when absent or malformed, never an exception ----------------------


def read_ip(value: bytes | None) -> IPv4Address | None:
    if value is None or len(value) != 4:
        return None
    return IPv4Address(value)


def read_text(value: bytes | None) -> str | None:
    """Option text without the trailing NULs some senders add (dnsmasq NUL-terminates option 67)."""
    if value is None:
        return None
    return value.rstrip(b"\0").decode("latin-1")


def read_u16(value: bytes | None) -> int | None:
    if value is None or len(value) != 2:
        return None
    return int(_U16.unpack(value)[0])


def read_u32(value: bytes | None) -> int | None:
    if value is None or len(value) != 4:
        return None
    return int(_U32.unpack(value)[0])
