"""The contents of the PXE and iPXE DHCP options (RFC 4578, PXE 2.1, RFC 3004, iPXE's option 175).

Pure functions over option *values*, the bytes :meth:`DhcpPacket.get` returns. Parsers raise
:class:`DecodeError` for malformed contents, so a classifier can treat them like a bad packet; encoders
raise :class:`ValueError` for arguments they cannot represent.

What real firmware sends (see ``tests/fixtures/dhcp``): iPXE puts its user class as the bare string
``iPXE``, not in RFC 3004's length-prefixed form, and describes itself in option 175 (version, NIC bus id,
one sub-option per compiled-in feature). OVMF's PXE and HTTP Boot clients send option 97 with a nil GUID
under QEMU unless ``-uuid`` is given.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address

from netboot.protocol.errors import DecodeError

__all__ = [
    "DISCOVERY_USE_BOOTFILE",
    "IPXE_USER_CLASS",
    "BootMenuEntry",
    "ClientNdi",
    "IpxeInfo",
    "IpxeOpt",
    "PxeOpt",
    "encode_encapsulated",
    "ipxe_no_pxedhcp",
    "is_ipxe",
    "parse_boot_item",
    "parse_client_arch",
    "parse_client_ndi",
    "parse_encapsulated",
    "parse_ipxe",
    "parse_user_class",
    "parse_uuid",
    "pxe_vendor_options",
]

#: The user class iPXE sends (option 77), and the one netboot keys on.
IPXE_USER_CLASS = "iPXE"


class PxeOpt(IntEnum):
    """PXE 2.1 sub-options of option 43 when the vendor class is ``PXEClient``."""

    DISCOVERY_CONTROL = 6
    MCAST_ADDR = 7
    BOOT_SERVERS = 8
    BOOT_MENU = 9
    MENU_PROMPT = 10
    BOOT_ITEM = 71
    END = 255


#: PXE_DISCOVERY_CONTROL bit 3: "if a boot file name is present in this offer, download it; do not
#: prompt, show a menu or discover boot servers". What a ProxyDHCP that names the file wants.
DISCOVERY_USE_BOOTFILE = 0x08


class IpxeOpt(IntEnum):
    """Sub-options of iPXE's option 175 (iPXE ``include/ipxe/dhcp.h``).

    Codes 16-79 are feature flags: iPXE sends one per compiled-in feature, value = feature version.
    """

    PRIORITY = 1
    KEEP_SAN = 8
    SKIP_SAN_BOOT = 9
    PXE_EXT = 16
    ISCSI = 17
    AOE = 18
    HTTP = 19
    HTTPS = 20
    TFTP = 21
    FTP = 22
    DNS = 23
    BZIMAGE = 24
    MULTIBOOT = 25
    SLAM = 26
    SRP = 27
    NBI = 32
    PXE = 33
    ELF = 34
    COMBOOT = 35
    EFI = 36
    FCOE = 37
    VLAN = 38
    MENU = 39
    SDI = 40
    NFS = 41
    NO_PXEDHCP = 176
    BUS_ID = 177
    BIOS_DRIVE = 189
    VERSION = 235


_U16 = struct.Struct("!H")
_BOOT_ITEM = struct.Struct("!HH")
_FEATURE_CODES = range(16, 80)


# -- client identification -------------------------------------------------------------------------


def parse_client_arch(data: bytes) -> tuple[int, ...]:
    """Option 93: the client's architecture types (RFC 4578 2.1), a list of uint16, usually one."""
    if not data or len(data) % 2:
        raise DecodeError(f"option 93 must be a non-empty list of 16-bit types, got {len(data)} bytes")
    return struct.unpack(f"!{len(data) // 2}H", data)


@dataclass(frozen=True, slots=True)
class ClientNdi:
    """Option 94 (RFC 4578 2.2): network interface type (1 = UNDI) and its version, e.g. UNDI 3.10."""

    type: int
    major: int
    minor: int


def parse_client_ndi(data: bytes) -> ClientNdi:
    if len(data) != 3:
        raise DecodeError(f"option 94 must be 3 bytes (type, major, minor), got {len(data)}")
    return ClientNdi(data[0], data[1], data[2])


def parse_uuid(data: bytes) -> uuid.UUID | None:
    """Option 97 (RFC 4578 2.3): type 0 and a 16-byte machine GUID, as ``dmidecode -s system-uuid``
    prints it; None when the firmware has no UUID to give.

    The GUID is mixed-endian, like SMBIOS 2.6+ and EFI GUIDs: the first three fields are little-endian.
    OVMF copies the SMBIOS bytes as they are, and iPXE deliberately converts to this order, so
    ``UUID(bytes_le=...)`` gives the value the admin sees in dmidecode, the BIOS setup and ``qemu -uuid``.
    A tool that prints the 16 bytes in wire order shows the first three fields byte-swapped.

    The all-zero and all-ones GUIDs mean "not set" in SMBIOS and cannot identify a machine, so they give
    None; QEMU sends all zeros unless started with ``-uuid``.
    """
    if len(data) != 17 or data[0] != 0:
        raise DecodeError(f"option 97 must be 17 bytes, type 0 and a GUID; got {len(data)}: {data[:4].hex()}")
    guid = data[1:]
    if guid in (bytes(16), b"\xff" * 16):
        return None
    return uuid.UUID(bytes_le=guid)


def parse_user_class(data: bytes) -> tuple[str, ...]:
    """Option 77 as a tuple of class names.

    RFC 3004 defines a list of length-prefixed names, but iPXE, Windows and ISC dhclient send one bare
    string (``iPXE``). The value is read as RFC 3004 only when the lengths cover it exactly with no empty
    name; anything else is one bare name. A bare name misreads only if its first byte happens to equal the
    length of the rest, which no real class name does.
    """
    names: list[str] = []
    at = 0
    while at < len(data):
        length = data[at]
        if length == 0 or at + 1 + length > len(data):
            return (data.decode("latin-1"),)
        names.append(data[at + 1 : at + 1 + length].decode("latin-1"))
        at += 1 + length
    return tuple(names)


# -- encapsulated options (43, 175) ----------------------------------------------------------------


def parse_encapsulated(data: bytes) -> dict[int, bytes]:
    """Sub-options of an encapsulated option (43, 175): code -> value, repeated codes joined.

    PAD (0) is skipped and END (255) stops the scan: dnsmasq ends its option 175 with END, and PXE
    requires END in option 43.
    """
    found: dict[int, bytes] = {}
    at = 0
    while at < len(data):
        code = data[at]
        if code == 0:
            at += 1
            continue
        if code == 255:
            break
        if at + 1 >= len(data):
            raise DecodeError(f"sub-option {code} at offset {at} has no length byte")
        end = at + 2 + data[at + 1]
        if end > len(data):
            raise DecodeError(f"sub-option {code} length {data[at + 1]} runs past the end at offset {at}")
        found[code] = found.get(code, b"") + data[at + 2 : end]
        at = end
    return found


def encode_encapsulated(suboptions: Mapping[int, bytes], *, end: bool = True) -> bytes:
    """The value of an encapsulated option from ``{code: value}``, in mapping order.

    END is appended by default: PXE 2.1 requires it in option 43, and dnsmasq's option 175 has it too
    (real iPXE accepts that; see the bios-ipxe offer fixture).
    """
    out = bytearray()
    for code, value in suboptions.items():
        if not 0 < code < 255:
            raise ValueError(f"sub-option code {code} is reserved for PAD/END")
        if len(value) > 255:
            raise ValueError(f"sub-option {code} is {len(value)} bytes; at most 255 fit")
        out += bytes((code, len(value)))
        out += value
    if end:
        out.append(255)
    return bytes(out)


# -- PXE option 43 ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BootMenuEntry:
    """One PXE boot menu entry, for firmware that honours option 43 menus (PXE 2.1, sub-options 8-10).

    ``server_type`` 0 means "boot from local disk" to PXE clients; 0x8000-0xFFFE are for vendors, so
    netboot's own entry uses 0x8000. ``timeout`` is seconds before the entry is chosen (0: at once,
    255: wait for a key).
    """

    description: str
    server: IPv4Address
    prompt: str = "Press F8 for boot menu"
    timeout: int = 0
    server_type: int = 0x8000


def pxe_vendor_options(
    *,
    discovery_control: int = DISCOVERY_USE_BOOTFILE,
    menu: BootMenuEntry | None = None,
    boot_item: tuple[int, int] | None = None,
) -> bytes:
    """Option 43 for a PXE client (vendor class ``PXEClient``), as a ProxyDHCP or boot server sends it.

    The default, ``06 01 08 ff``, tells the client to boot the file named in this very offer and skip
    boot-server discovery: the simple ProxyDHCP case. ``menu`` adds a one-entry boot-server list (8),
    boot menu (9) and prompt (10). ``boot_item`` (type, layer) is sub-option 71, which a boot server
    (port 4011) echoes in its ACK.
    """
    suboptions: dict[int, bytes] = {PxeOpt.DISCOVERY_CONTROL: bytes((discovery_control,))}
    if menu is not None:
        text = menu.description.encode("latin-1")
        prompt = menu.prompt.encode("latin-1")
        suboptions[PxeOpt.BOOT_SERVERS] = _U16.pack(menu.server_type) + b"\x01" + menu.server.packed
        suboptions[PxeOpt.BOOT_MENU] = _U16.pack(menu.server_type) + bytes((len(text),)) + text
        suboptions[PxeOpt.MENU_PROMPT] = bytes((menu.timeout,)) + prompt
    if boot_item is not None:
        suboptions[PxeOpt.BOOT_ITEM] = _BOOT_ITEM.pack(*boot_item)
    return encode_encapsulated(suboptions)


def parse_boot_item(option43: bytes) -> tuple[int, int] | None:
    """PXE_BOOT_ITEM (43.71) from a client's request to a boot server: (server type, layer)."""
    value = parse_encapsulated(option43).get(PxeOpt.BOOT_ITEM)
    if value is None:
        return None
    if len(value) != 4:
        raise DecodeError(f"PXE boot item (43.71) must be 4 bytes, got {len(value)}")
    server_type, layer = _BOOT_ITEM.unpack(value)
    return int(server_type), int(layer)


# -- iPXE ------------------------------------------------------------------------------------------


def is_ipxe(user_classes: Iterable[str], opt175: bytes | None) -> bool:
    """True for iPXE: it sends user class ``iPXE`` and option 175. Either one is enough."""
    return opt175 is not None or IPXE_USER_CLASS in user_classes


@dataclass(frozen=True, slots=True)
class IpxeInfo:
    """What iPXE says about itself in option 175: worth an event line and a boot decision.

    The QEMU ROM in the lab reports version (1, 0, 0) and no EFI feature; ``ipxe.efi`` adds EFI (36).
    """

    version: tuple[int, ...] | None
    features: frozenset[int]
    bus_id: bytes | None

    @property
    def pci_id(self) -> tuple[int, int] | None:
        """(vendor, device) of the NIC when it is on PCI, e.g. (0x8086, 0x100e) for QEMU's e1000."""
        if self.bus_id is None or len(self.bus_id) != 5 or self.bus_id[0] != 1:
            return None
        vendor, device = struct.unpack("!HH", self.bus_id[1:])
        return int(vendor), int(device)

    def has(self, feature: IpxeOpt) -> bool:
        return int(feature) in self.features


def parse_ipxe(opt175: bytes) -> IpxeInfo:
    """Read iPXE's option 175: version (235), NIC bus id (177) and feature flags (16-79)."""
    suboptions = parse_encapsulated(opt175)
    version = suboptions.get(IpxeOpt.VERSION)
    return IpxeInfo(
        version=tuple(version) if version else None,
        features=frozenset(code for code in suboptions if code in _FEATURE_CODES),
        bus_id=suboptions.get(IpxeOpt.BUS_ID),
    )


def ipxe_no_pxedhcp() -> bytes:
    """Option 175 with 176 = 1: iPXE then stops waiting (about 2 s) for a ProxyDHCP offer.

    Byte for byte what dnsmasq sends (``b0 01 01 ff``), which the lab's iPXE builds accept.
    """
    return encode_encapsulated({IpxeOpt.NO_PXEDHCP: b"\x01"})
