"""The narrow interfaces the boot core sees the rest of netboot through.

The core never holds the store, the config or the daemon: it is given an :class:`Inventory` (the systems it
reads and changes), a :data:`ProfileSource` (the currently loaded profiles), an :class:`EventLog` (where
each step is recorded, and which IP belongs to which MAC) and the :class:`Site` facts from the config.
Tests hand it the real store and recorder over a temporary database; nothing here imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any, Protocol

from netboot.arch import Arch
from netboot.events import Event
from netboot.inventory import System
from netboot.mac import MacAddress
from netboot.profiles import ProfileSet


class Inventory(Protocol):
    """The systems the core reads and changes."""

    def get(self, mac: MacAddress) -> System | None: ...

    def add(self, system: System) -> System:
        """Insert; raises ValueError (a uniqueness conflict) when the MAC, hostname or IP is taken."""
        ...

    def save(self, system: System) -> System:
        """Update; raises KeyError when absent, ValueError on a uniqueness conflict."""
        ...

    def stage_seen(self, mac: MacAddress, *, arch: str | None, uuid: str | None, now: float) -> None:
        """Note that ``mac`` booted (a discovered system when unknown), written within about half a second
        (the DHCP thread's group commit, else the store's own): no write waits in front of a reply."""
        ...


class EventLog(Protocol):
    """Where the core records what each machine did, and what it learned about addresses."""

    def record(self, event: Event) -> Event: ...

    def learn(self, ip: str, mac: MacAddress) -> None: ...

    def mac_for(self, ip: str | None) -> MacAddress | None: ...

    def addresses_of(self, mac: MacAddress) -> tuple[str, ...]:
        """The addresses ``mac`` used in its own DHCP exchanges, newest first (what tokens bind to)."""
        ...


class Audit(Protocol):
    """The audit log, for what a machine (not an admin) changed: a menu choice, the end of an install."""

    def write(
        self, actor: str, action: str, target: str, detail: dict[str, Any] | None = None, *, ok: bool = True
    ) -> None: ...


#: The profiles loaded now (the daemon reloads them when a file changes; a call returns the current set).
ProfileSource = Callable[[], ProfileSet]


@dataclass(frozen=True)
class Site:
    """The configuration facts every boot decision needs."""

    #: what unknown machines get: ``local``, ``menu`` or ``profile:NAME``
    unknown_default: str = "local"
    #: how machines leave for their disk when nothing more specific says (``skip``: no boot file)
    local_boot: str = "skip"
    #: which loaders machines get when nothing more specific says: ``ipxe`` or ``shim-grub`` (Secure Boot)
    boot_chain: str = "ipxe"
    http_port: int = 80
    #: the address clients are told to use; None = the address each client reached us at
    server_ip: IPv4Address | None = None
    domain: str | None = None
    #: loader file name per architecture, only for loaders found on disk
    loaders: Mapping[Arch, str] = field(default_factory=dict)
    #: whether shim and signed GRUB were found (the shim-grub chain can be served)
    shim: bool = False
    #: whether the chain's UEFI HTTP Boot disk image can be built (mtools found, :mod:`netboot.shimdisk`)
    shim_http: bool = False
    #: site-wide template variables (the lowest layer of ``vars``)
    variables: Mapping[str, Any] = field(default_factory=dict)
    #: whether this daemon serves DHCP (then only DHCP teaches a machine's address; with DHCP off, the
    #: first address that fetched the boot script)
    dhcp: bool = True
    #: seconds an install token lives after the boot script that carried it was served
    token_ttl: float = 4 * 3600
    #: seconds a menu choice is accepted after the menu was served, from the address it was served to
    menu_ttl: float = 15 * 60
