"""What a boot client gets: the decision table.

=========================  ===========================================================  ===========
client                     boot file                                                    option 60
=========================  ===========================================================  ===========
iPXE (any arch)            ``http://SERVER:PORT/boot.ipxe?mac=${net0/mac}``              PXEClient
UEFI HTTP Boot (16, 19)    ``http://SERVER:PORT/loaders/<uefi loader>``                 HTTPClient
BIOS (0, or no opt 93)     TFTP ``undionly.kpxe``                                       PXEClient
UEFI x64 (7, 9)            TFTP ``ipxe.efi`` (``snponly.efi`` when configured)          PXEClient
UEFI ARM64 (11)            TFTP the configured ARM64 loader                             PXEClient
anything else              nothing: stay silent (proxy) or a plain lease (full)         -
=========================  ===========================================================  ===========

A loader that is not installed means no boot answer (the caller records why), never a file that 404s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address

from netboot.arch import Arch
from netboot.boot.classify import BootRequest

#: The script URL iPXE is given; ``${net0/mac}`` is expanded by iPXE itself.
IPXE_SCRIPT_PATH = "/boot.ipxe?mac=${net0/mac}"
#: Where loaders are served over HTTP (UEFI HTTP Boot).
LOADER_HTTP_PREFIX = "/loaders/"


@dataclass(frozen=True, slots=True)
class BootContext:
    """Facts the decision needs: where this server is reachable and which loaders exist."""

    server_ip: IPv4Address
    http_port: int
    #: loader file name per architecture, only for loaders that were found on disk
    loaders: Mapping[Arch, str]


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
    """A boot client we will not answer, and why (recorded as an event)."""

    reason: str


def http_base(ctx: BootContext) -> str:
    return f"http://{ctx.server_ip}:{ctx.http_port}" if ctx.http_port != 80 else f"http://{ctx.server_ip}"


def decide(request: BootRequest, ctx: BootContext) -> BootDecision | NoBoot | None:
    """The boot answer for ``request``; None for clients that are not booting (not ours to answer)."""
    if not request.boot_client:
        return None
    if request.ipxe:
        vendor = "HTTPClient" if request.http else "PXEClient"
        return BootDecision(http_base(ctx) + IPXE_SCRIPT_PATH, ctx.server_ip, vendor, "http")
    loader = ctx.loaders.get(request.arch)
    if loader is None:
        return NoBoot(f"no boot loader configured or found for {request.arch.value}")
    if request.http:
        return BootDecision(http_base(ctx) + LOADER_HTTP_PREFIX + loader, ctx.server_ip, "HTTPClient", "http")
    return BootDecision(loader, ctx.server_ip, "PXEClient", "tftp")
