"""What a boot client gets at DHCP time: the decision table, firmware x loaders x next boot.

=========================  ===========================================================  ===========
client                     boot file                                                    option 60
=========================  ===========================================================  ===========
next boot is local (skip)  nothing: silence (proxy), a lease without a boot file (full)  -
iPXE (any arch)            ``http://SERVER:PORT/boot.ipxe?mac=${net0/mac}``              PXEClient
UEFI HTTP Boot (16, 19)    ``http://SERVER:PORT/loaders/<uefi loader>``                 HTTPClient
BIOS (0, or no opt 93)     TFTP ``undionly.kpxe``                                       PXEClient
UEFI x64 (7, 9)            TFTP ``ipxe.efi`` (``snponly.efi`` when configured)          PXEClient
UEFI ARM64 (11)            TFTP the configured ARM64 loader                             PXEClient
anything else              nothing: stay silent (proxy) or a plain lease (full)         -
=========================  ===========================================================  ===========

On the ``shim-grub`` chain (Secure Boot, :mod:`netboot.loaders`) a UEFI x64 PXE client gets TFTP
``shimx64.efi`` instead of iPXE; shim then fetches ``grubx64.efi`` beside it and GRUB its config (see
:mod:`netboot.boot.tftpnames`). A UEFI x64 HTTP Boot client gets ``http://SERVER:PORT/shim-grub/<mac>.img``,
a disk image with shim and GRUB in it (:mod:`netboot.shimdisk`: Debian 12's signed GRUB has no ``http``
module, so shim and GRUB fetched one by one over HTTP would stop at ``grub>``). The chain gets no boot
file, with the reason recorded, when shim or GRUB is not installed, or, for HTTP Boot, mtools (which
builds the image). The chain does not change BIOS clients (no Secure Boot there) nor a client that is
already iPXE.

"Next boot is local (skip)" is the registration axis, decided by :func:`netboot.boot.choose.choose`: a
machine in state ``installed`` or ``local`` (or an unknown one under ``unknown-default: local``) whose
``local_boot`` is ``skip`` gets no boot file, so its firmware moves on to the next boot device at once
instead of loading iPXE only to be told ``exit``. Every other machine gets a loader, and the boot script
decides the rest. A loader that is not installed means no boot answer (the caller records why), never a
file that 404s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address

from netboot.arch import Arch
from netboot.boot import urls
from netboot.boot.classify import BootRequest

#: the ``boot_chain`` values (:data:`netboot.schema_types.BOOT_CHAIN_CHOICES`)
IPXE_CHAIN = "ipxe"
SHIM_CHAIN = "shim-grub"


@dataclass(frozen=True, slots=True)
class BootContext:
    """Facts the decision needs: where this server is reachable and which loaders exist."""

    server_ip: IPv4Address
    http_port: int
    #: loader file name per architecture, only for loaders that were found on disk
    loaders: Mapping[Arch, str]
    #: whether the Secure Boot files (shim and signed GRUB) were found, so the shim-grub chain can be served
    shim: bool = False
    #: whether its HTTP Boot disk image can be built too (:mod:`netboot.shimdisk`: mtools found)
    shim_http: bool = False

    @property
    def http_base(self) -> str:
        return urls.http_base(str(self.server_ip), self.http_port)


@dataclass(frozen=True, slots=True)
class BootDecision:
    boot_file: str
    next_server: IPv4Address
    #: option 60 to send back: ``PXEClient`` or ``HTTPClient``
    vendor_class: str
    #: how the boot file is fetched: ``tftp`` or ``http``
    via: str


@dataclass(frozen=True, slots=True)
class NoBoot:
    """A boot client we cannot serve, and why (recorded as an event)."""

    reason: str


@dataclass(frozen=True, slots=True)
class LocalBoot:
    """A boot client whose next boot is its disk: no boot file, so the firmware moves on (recorded)."""

    reason: str


#: What :func:`decide` answers a boot client; None means "not a boot client, not ours to answer".
DhcpAnswer = BootDecision | NoBoot | LocalBoot


#: why a UEFI HTTP Boot client on the shim-grub chain gets no boot file although shim and GRUB are there
HTTP_BOOT_SHIM = (
    "shim-grub chain: UEFI HTTP Boot needs mtools to build its disk image (apt-get install mtools); "
    "PXE works without"
)


def decide(
    request: BootRequest, ctx: BootContext, local: LocalBoot | None = None, chain: str = IPXE_CHAIN
) -> DhcpAnswer | None:
    """The boot answer for ``request``; ``local`` when its registration says "boot your disk, no detour";
    ``chain`` is the machine's ``boot_chain``."""
    if not request.boot_client:
        return None
    if local is not None:
        return local
    if request.ipxe:
        vendor = "HTTPClient" if request.http else "PXEClient"
        return BootDecision(urls.ipxe_script_url(ctx.http_base), ctx.server_ip, vendor, "http")
    if chain == SHIM_CHAIN and request.arch is Arch.UEFI_X64:
        if not ctx.shim:
            return NoBoot(f"shim-grub chain: {urls.SHIM_BOOT_FILE} or {urls.GRUB_FILE} not installed "
                          "(apt-get install shim-signed grub-efi-amd64-signed)")
        if request.http:
            if not ctx.shim_http:
                return NoBoot(HTTP_BOOT_SHIM)
            return BootDecision(urls.shim_disk_url(ctx.http_base, request.mac), ctx.server_ip, "HTTPClient",
                                "http")
        return BootDecision(urls.SHIM_BOOT_FILE, ctx.server_ip, "PXEClient", "tftp")
    loader = ctx.loaders.get(request.arch)
    if loader is None:
        return NoBoot(f"no boot loader configured or found for {request.arch.value}")
    if request.http:
        return BootDecision(urls.loader_url(ctx.http_base, loader), ctx.server_ip, "HTTPClient", "http")
    return BootDecision(loader, ctx.server_ip, "PXEClient", "tftp")
