"""Who is asking: turn a DHCP request into a :class:`BootRequest`.

PXE firmware announces itself with vendor class ``PXEClient:Arch:xxxxx:UNDI:yyyzzz``, UEFI HTTP Boot with
``HTTPClient:...``; option 93 carries the architecture. iPXE is recognised by user class ``iPXE`` or its
encapsulated option 175: it must get the HTTP script URL, never a loader again (no chainload loop). An
ordinary OS client (the Debian installer sends vendor class ``d-i`` and no option 93) is not a boot client.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from netboot.arch import Arch, arch_from_code
from netboot.mac import MacAddress
from netboot.protocol import pxe
from netboot.protocol.dhcp import DhcpPacket, Opt
from netboot.protocol.errors import DecodeError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BootRequest:
    """What a client is, as far as booting is concerned."""

    mac: MacAddress
    arch: Arch
    arch_code: int | None
    #: vendor class says PXEClient (firmware PXE, or iPXE imitating it)
    pxe: bool
    #: UEFI HTTP Boot (vendor class HTTPClient or an HTTP arch code)
    http: bool
    #: iPXE is running: give it the HTTP script, not a loader
    ipxe: bool
    vendor_class: str | None
    user_classes: tuple[str, ...]
    uuid: uuid.UUID | None

    @property
    def boot_client(self) -> bool:
        """Should a boot server answer this client at all?"""
        return self.pxe or self.http or self.ipxe

    @property
    def kind(self) -> str:
        """A short label for logs and events: ``ipxe``, ``uefi-x64-http``, ``bios``, ``os``..."""
        if self.ipxe:
            return f"ipxe-{self.arch.value}"
        if self.http:
            return f"{self.arch.value}-http"
        return self.arch.value if self.boot_client else "os"


def _option(packet: DhcpPacket, code: int, parse: Callable[[bytes], T], absent: T) -> T:
    """A parsed option, or ``absent`` when missing or malformed (a bad option 93 is not a bad packet)."""
    value = packet.get(code)
    if value is None:
        return absent
    try:
        return parse(value)
    except DecodeError:
        return absent


def _vendor_arch(vendor: str | None) -> int | None:
    """The arch field of ``PXEClient:Arch:00007:UNDI:003000`` (PXE 2.1) or ``HTTPClient:Arch:00016:...``."""
    if vendor is None:
        return None
    fields = vendor.split(":")
    if len(fields) >= 3 and fields[0] in ("PXEClient", "HTTPClient") and fields[1] == "Arch":
        digits = fields[2]
        if digits.isascii() and digits.isdigit() and len(digits) <= 5:
            return int(digits)
    return None


def classify(packet: DhcpPacket) -> BootRequest | None:
    """Describe the client behind ``packet``; None when it has no usable hardware address."""
    mac = packet.mac
    if mac is None:
        return None
    vendor = packet.vendor_class
    no_codes: tuple[int, ...] = ()
    codes = _option(packet, Opt.CLIENT_ARCH, pxe.parse_client_arch, no_codes)
    # option 93 first; when it is missing or malformed, the vendor class carries the same code
    code = codes[0] if codes else _vendor_arch(vendor)
    arch_code = arch_from_code(code)
    vendor_pxe = vendor is not None and vendor.startswith("PXEClient")
    vendor_http = vendor is not None and vendor.startswith("HTTPClient")
    no_classes: tuple[str, ...] = ()
    user_classes = _option(packet, Opt.USER_CLASS, pxe.parse_user_class, no_classes)
    ipxe = pxe.is_ipxe(user_classes, packet.get(Opt.IPXE_ENCAP))
    arch = arch_code.arch
    if arch is Arch.UNKNOWN and code is None and (vendor_pxe or ipxe):
        arch = Arch.BIOS  # PXE ROMs older than RFC 4578 send no option 93: they are BIOS
    return BootRequest(
        mac=mac,
        arch=arch,
        arch_code=code,
        pxe=vendor_pxe,
        http=vendor_http or (arch_code.http and not ipxe),
        ipxe=ipxe,
        vendor_class=vendor,
        user_classes=user_classes,
        uuid=_option(packet, Opt.UUID_GUID, pxe.parse_uuid, None),
    )
