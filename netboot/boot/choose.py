"""What a machine's next netboot does: the registration axis of the boot decision (pure).

============================  ===========================  ==============================================
machine                       decision                     with
============================  ===========================  ==============================================
unknown / ``discovered``      ``unknown-default``          ``local``, ``menu``, or ``profile:NAME`` (install)
``install``                   ``install``                  its profile (``local`` when the profile is gone)
``installed`` / ``local``     ``local``                    its profile's, group's or own ``local_boot``
============================  ===========================  ==============================================

A ``local`` decision carries *how* the machine leaves for its disk, ``local_boot``, the most specific
setting winning: the system's own, then its group's, then its profile's (inherited through ``parent``),
then the site's ``local-boot``. ``skip`` (the default) means no boot file at DHCP time, so the firmware
goes straight to its next boot device; ``auto``, ``exit`` and ``sanboot`` keep the iPXE hand-back for
firmware that needs it (the boot script then exits or ``sanboot``s the first disk).

Every choice also carries ``boot_chain``, which loaders the machine gets, found in the same order (system,
group, profile, then the site's ``boot-chain``): ``ipxe`` (the default) or ``shim-grub`` for UEFI Secure
Boot. An unknown machine has no group: the unknown-default profile's chain when it installs one, else the
site's (a discovered system's own override still wins).
"""

from __future__ import annotations

from dataclasses import dataclass

from netboot.inventory import System, SystemState
from netboot.profiles import Group, Profile, ProfileSet, boot_chain_for, local_boot_for
from netboot.schema_types import DEFAULT_BOOT_CHAIN

#: ``local_boot`` value that gives the machine no boot file at DHCP time
SKIP = "skip"
#: what the boot script does when a ``skip`` machine fetches it anyway (e.g. an iPXE ROM that kept going)
SCRIPT_FALLBACK = "auto"


@dataclass(frozen=True, slots=True)
class BootChoice:
    """What the next netboot of a machine does, with which profile, and how it leaves for its disk."""

    decision: str  # install | local | menu
    system: System | None
    profile: Profile | None
    group: Group | None
    reason: str
    #: how a ``local`` decision reaches the disk: ``skip`` (no boot file), ``auto``, ``exit``, ``sanboot``
    local_boot: str = SKIP
    #: which loaders the machine gets: ``ipxe`` or ``shim-grub`` (UEFI Secure Boot)
    boot_chain: str = DEFAULT_BOOT_CHAIN

    @property
    def skips_dhcp(self) -> bool:
        """True when DHCP should give no boot file: the firmware moves on to its disk by itself."""
        return self.decision == "local" and self.local_boot == SKIP

    @property
    def script_local_boot(self) -> str:
        """The iPXE hand-back the boot script uses (``skip`` has none of its own)."""
        return SCRIPT_FALLBACK if self.local_boot == SKIP else self.local_boot


def choose(
    system: System | None,
    profiles: ProfileSet,
    unknown_default: str,
    site_local_boot: str = SKIP,
    arch: str | None = None,
    site_boot_chain: str = DEFAULT_BOOT_CHAIN,
) -> BootChoice:
    """The boot decision for a (possibly unknown) machine; see the module docstring."""
    if system is None or system.state is SystemState.DISCOVERED:
        if unknown_default == "menu":
            chain = boot_chain_for(system, None, None, site_boot_chain)
            return BootChoice("menu", system, None, None, "unknown machine: profile menu", boot_chain=chain)
        if unknown_default.startswith("profile:"):
            name = unknown_default.removeprefix("profile:")
            profile = profiles.get(name)
            if profile is not None:
                reason = f"unknown machine: default profile {name}"
                method = local_boot_for(system, None, profile, site_local_boot)
                chain = boot_chain_for(system, None, profile, site_boot_chain)
                return BootChoice("install", system, profile, None, reason, method, chain)
        method = local_boot_for(system, None, None, site_local_boot)
        chain = boot_chain_for(system, None, None, site_boot_chain)
        return BootChoice("local", system, None, None, "unknown machine: local boot", method, chain)
    profile, group = profiles.select(system, arch)
    if system.state is not SystemState.INSTALL:
        method = local_boot_for(system, group, profile, site_local_boot)
        chain = boot_chain_for(system, group, profile, site_boot_chain)
        reason = f"state {system.state.value}: local boot"
        return BootChoice("local", system, profile, group, reason, method, chain)
    if profile is None:
        method = local_boot_for(system, group, None, site_local_boot)
        chain = boot_chain_for(system, group, None, site_boot_chain)
        reason = f"profile {system.profile!r} not found: local boot"
        return BootChoice("local", system, None, None, reason, method, chain)
    # an install with a local-kind profile renders the local script: it leaves the way that profile says
    method = local_boot_for(system, group, profile, site_local_boot)
    chain = boot_chain_for(system, group, profile, site_boot_chain)
    return BootChoice("install", system, profile, group, f"install {profile.name}", method, chain)
