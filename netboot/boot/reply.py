"""The boot part of a reply: fields and options that tell a client what to load next.

Shared by full mode (added to OFFER/ACK next to the lease) and proxy mode (the whole reply).
"""

from __future__ import annotations

from ipaddress import IPv4Address

from netboot.boot.classify import BootRequest
from netboot.boot.decide import BootDecision
from netboot.protocol import pxe
from netboot.protocol.dhcp import DhcpPacket, Opt

#: the ``file`` header field holds at most 128 bytes including a terminating NUL
FILE_FIELD_MAX = 127


def boot_fields(decision: BootDecision) -> tuple[IPv4Address, bytes]:
    """``(siaddr, file)`` header fields: next server and the boot file when it fits."""
    name = decision.boot_file.encode()
    return decision.next_server, name if len(name) <= FILE_FIELD_MAX else b""


def boot_options(
    decision: BootDecision, request: BootRequest, packet: DhcpPacket, *, proxy: bool
) -> list[tuple[int, bytes]]:
    """Options 60, 43, 66, 67, 97 and 175 as PXE, UEFI HTTP Boot and iPXE expect them."""
    opts: list[tuple[int, bytes]] = [(Opt.VENDOR_CLASS, decision.vendor_class.encode())]
    name = decision.boot_file.encode()
    requested = set(packet.param_request_list)
    if len(name) > FILE_FIELD_MAX or Opt.BOOTFILE in requested or decision.via == "http":
        opts.append((Opt.BOOTFILE, name))
    if decision.via == "tftp" and Opt.TFTP_SERVER in requested:
        opts.append((Opt.TFTP_SERVER, str(decision.next_server).encode()))
    if decision.vendor_class == "PXEClient" and not request.ipxe:
        # PXE 2.1: discovery control 8 = "use the boot file in this packet, skip boot-server discovery"
        opts.append((Opt.VENDOR_SPECIFIC, pxe.pxe_vendor_options()))
    guid = packet.get(Opt.UUID_GUID)
    if guid is not None:
        opts.append((Opt.UUID_GUID, guid))
    if request.ipxe and not proxy:
        opts.append((Opt.IPXE_ENCAP, pxe.ipxe_no_pxedhcp()))  # do not wait 2 s for a ProxyDHCP offer
    return opts
