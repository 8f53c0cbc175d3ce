"""Which TFTP names are per-MAC boot configs (pure): the boot core renders those on request.

pxelinux asks ``pxelinux.cfg/01-<mac>`` (then UUID, hex-IP and ``default`` names). Debian 12's signed GRUB
(the shim-grub chain) asks only ``/grub/grub.cfg`` (``docs/secure-boot-research.md``); other GRUB builds
search ``grub/grub.cfg-01-<mac>`` first. Names that carry a MAC (with dashes, or with colons as GRUB's
``$net_default_mac`` spells it) are answered for that MAC; the catch-all names (``pxelinux.cfg/default``,
``grub/grub.cfg``) for the MAC that the client's IP had in its last DHCP exchange. A GRUB whose address
netboot never saw gets :data:`GRUB_STUB` for ``grub/grub.cfg``, which makes it ask its per-MAC name, so it
never stops at a ``grub>`` prompt for want of a config. Anything else is not ours (None): the TFTP root
answers it.
"""

from __future__ import annotations

import re

from netboot.mac import InvalidMac, MacAddress

_PXELINUX_MAC = re.compile(r"^(?:.*/)?pxelinux\.cfg/(01-(?:[0-9a-f]{2}-){5}[0-9a-f]{2})$", re.I)
_GRUB_MAC = re.compile(
    r"^(?:.*/)?grub\.cfg-01-((?:[0-9a-f]{2}-){5}[0-9a-f]{2}|(?:[0-9a-f]{2}:){5}[0-9a-f]{2})$", re.I
)
_PXELINUX_DEFAULT = re.compile(r"^(?:.*/)?pxelinux\.cfg/default$", re.I)
_GRUB_DEFAULT = re.compile(r"^(?:.*/)?grub/grub\.cfg$", re.I)


#: ``grub/grub.cfg`` for a GRUB netboot could not place: it asks again by its own MAC
GRUB_STUB = """# netboot: this GRUB's own config is the one named after its MAC
source "$prefix/grub.cfg-01-$net_default_mac"
"""


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
