"""Which profile and group a machine gets, over one loaded ``profiles/`` folder.

The most specific group whose selectors all match a machine wins (specificity = number of selectors, each
label counting one); ties go to the group whose name sorts first. A profile assigned to the system itself
beats the group's profile, and then only groups for that profile are considered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from netboot.arch import Arch
from netboot.inventory import System
from netboot.profiles.model import SNIPPETS_DIR, Group, Profile, SystemFacts
from netboot.schema_types import DEFAULT_BOOT_CHAIN, DEFAULT_LOCAL_BOOT


class ProfileSet:
    """The loaded profiles and groups of one ``profiles/`` folder. Immutable; reload makes a new one."""

    def __init__(self, root: Path, profiles: Mapping[str, Profile], groups: Sequence[Group]) -> None:
        self.root = root
        self.snippets_dir = root / SNIPPETS_DIR
        self._profiles = dict(sorted(profiles.items()))
        #: most specific first, then by name: the first match wins
        self.groups = tuple(sorted(groups, key=lambda g: (-g.selector.specificity, g.name)))

    def get(self, name: str) -> Profile | None:
        return self._profiles.get(name)

    def names(self) -> list[str]:
        return list(self._profiles)

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._profiles.values())

    def __len__(self) -> int:
        return len(self._profiles)

    def __contains__(self, name: object) -> bool:
        return name in self._profiles

    def menu_profiles(self) -> list[Profile]:
        """Installer profiles offered in the boot menu for unknown machines, by name."""
        return [p for p in self._profiles.values() if p.menu and p.installs]

    def select_profile(self, facts: SystemFacts) -> tuple[Profile | None, Group | None]:
        """The profile for a machine and the group that matched it (None when none matched).

        An unknown profile name (assigned to the system but since removed) gives ``(None, None)``.
        """
        best = None
        for group in self.groups:
            if facts.profile is not None and group.profile != facts.profile:
                continue
            if group.selector.matches(facts):
                best = group
                break
        name = facts.profile or (best.profile if best else None)
        profile = self.get(name) if name else None
        if profile is None:
            return None, None
        return profile, best

    def select(self, system: System, arch: str | Arch | None = None) -> tuple[Profile | None, Group | None]:
        """:meth:`select_profile` for a stored system, with the arch seen in this boot request."""
        return self.select_profile(SystemFacts.from_system(system, arch))


def local_boot_for(
    system: System | None,
    group: Group | None,
    profile: Profile | None,
    site_default: str = DEFAULT_LOCAL_BOOT,
) -> str:
    """How a machine leaves for its disk: the first that says of its system, group, profile, the site.

    The site default is the config key ``local-boot`` (``skip`` unless set). ``skip``: no boot file at
    DHCP time; ``auto``/``exit``/``sanboot``: the iPXE hand-back.
    """
    for said in (
        system.local_boot if system else None,
        group.local_boot if group else None,
        profile.local_boot if profile else None,
    ):
        if said is not None:
            return said
    return site_default


def boot_chain_for(
    system: System | None,
    group: Group | None,
    profile: Profile | None,
    site_default: str = DEFAULT_BOOT_CHAIN,
) -> str:
    """Which loaders a machine gets: the first that says of its system, group, profile, the site.

    The site default is the config key ``boot-chain`` (``ipxe`` unless set). ``ipxe``: netboot's iPXE
    fetches the boot script (unsigned, so no Secure Boot); ``shim-grub``: the Microsoft-signed shim loads
    signed GRUB, for machines with UEFI Secure Boot on. The same order as :func:`local_boot_for`, so a
    group or a single system can move to Secure Boot without a profile of its own.
    """
    for said in (
        system.boot_chain if system else None,
        group.boot_chain if group else None,
        profile.boot_chain if profile else None,
    ):
        if said is not None:
            return said
    return site_default
