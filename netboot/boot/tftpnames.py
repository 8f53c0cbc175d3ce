"""Which TFTP names are per-MAC boot configs (pure): the boot core renders those on request.

pxelinux asks ``pxelinux.cfg/01-<mac>`` (then UUID, hex-IP and ``default`` names); GRUB's network image asks
``grub/grub.cfg-01-<mac>`` (then hex IP, then ``grub/grub.cfg``). Names that carry a MAC are answered for that
MAC; the catch-all names (``pxelinux.cfg/default``, ``grub/grub.cfg``) for the MAC that the client's IP had in
its last DHCP exchange. Anything else is not ours (None): the TFTP root answers it.
"""

from __future__ import annotations

import re

from netboot.mac import InvalidMac, MacAddress

_PXELINUX_MAC = re.compile(r"^(?:.*/)?pxelinux\.cfg/(01-(?:[0-9a-f]{2}-){5}[0-9a-f]{2})$", re.I)
_GRUB_MAC = re.compile(r"^(?:.*/)?grub\.cfg-(01-(?:[0-9a-f]{2}-){5}[0-9a-f]{2})$", re.I)
_PXELINUX_DEFAULT = re.compile(r"^(?:.*/)?pxelinux\.cfg/default$", re.I)
_GRUB_DEFAULT = re.compile(r"^(?:.*/)?grub/grub\.cfg$", re.I)


def classify_name(name: str) -> tuple[str, MacAddress | None] | None:
    """``(kind, mac)`` for a boot-config name; mac None for the catch-all names; None if not one."""
    for pattern, kind in ((_PXELINUX_MAC, "pxelinux"), (_GRUB_MAC, "grub")):
        match = pattern.match(name)
        if match:
            try:
                return kind, MacAddress.parse(match.group(1))
            except InvalidMac:
                return None
    if _PXELINUX_DEFAULT.match(name):
        return "pxelinux", None
    if _GRUB_DEFAULT.match(name):
        return "grub", None
    return None
