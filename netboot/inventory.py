"""What netboot knows about machines: the domain types shared by store, boot core, render and web.

A :class:`System` is a MAC registered to a profile (or a discovered, unknown MAC). Its :class:`SystemState`
is the install lifecycle: ``install`` means the next netboot installs; ``installed`` and ``local`` mean the
next netboot boots from the local disk, which is what stops reinstall loops.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from netboot.mac import MacAddress


class SystemState(enum.Enum):
    INSTALL = "install"
    INSTALLED = "installed"
    LOCAL = "local"
    DISCOVERED = "discovered"

    @property
    def boots_installer(self) -> bool:
        return self is SystemState.INSTALL


@dataclass(frozen=True, slots=True)
class System:
    """One machine, keyed by MAC. ``variables`` and ``labels`` are data, never template."""

    mac: MacAddress
    profile: str | None
    state: SystemState
    hostname: str | None = None
    ip: IPv4Address | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    #: per-system secret placed on the installer's kernel line; authorises answer file and callback
    token: str | None = None
    arch: str | None = None
    uuid: str | None = None
    first_seen: float | None = None
    last_seen: float | None = None
    #: how this machine leaves for its disk, overriding its group's and profile's ``local_boot``
    #: (``skip``: no boot file at DHCP time; ``auto``/``exit``/``sanboot``: the iPXE hand-back); None inherits
    local_boot: str | None = None
    #: the address the install token was bound to when the boot script carried it, and when it dies
    token_ip: str | None = None
    token_expires: float | None = None
    #: which loaders this machine gets, overriding its group's and profile's ``boot_chain`` (``ipxe``:
    #: netboot's iPXE; ``shim-grub``: shim and signed GRUB, for UEFI Secure Boot); None inherits
    boot_chain: str | None = None

    def as_json(self, *, with_token: bool = False) -> dict[str, Any]:
        """The JSON shape the API and ``netboot system ... --json`` share (the token only when asked)."""
        out: dict[str, Any] = {
            "mac": self.mac.colon,
            "hostname": self.hostname,
            "profile": self.profile,
            "state": self.state.value,
            "ip": str(self.ip) if self.ip else None,
            "vars": dict(self.variables),
            "labels": dict(self.labels),
            "arch": self.arch,
            "uuid": self.uuid,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "local_boot": self.local_boot,
            "boot_chain": self.boot_chain,
        }
        if with_token:
            out["token"] = self.token
        return out
