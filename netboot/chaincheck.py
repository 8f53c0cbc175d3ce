"""What the boot chains need that this machine lacks, and who goes without: the findings ``netboot check``
prints and the warnings ``netboot serve`` logs at start.

The iPXE chain needs an iPXE loader per client type (:mod:`netboot.loaders`); one that is missing is a
warning, as ``serve`` logs it: those clients get no boot file, but a site may have none of that type.

The Secure Boot chain (``boot_chain: shim-grub``) is chosen like ``local_boot``: a system's own
``boot_chain``, its group's, its profile's (inherited through ``parent``), then the site's ``boot-chain``
(:func:`netboot.boot.choose.choose`). Wherever it is chosen, the machines it covers need what the chain
needs, and this module says what that is and who would go without:

* shim and signed GRUB (``shimx64.efi``, ``grubx64.efi``, :mod:`netboot.loaders`): without them a UEFI x64
  PXE client on the chain gets no boot file (:func:`netboot.boot.decide.decide`). An error, naming the files,
  the apt packages, and every file (config, profile, group) and machine that chose the chain.
* MokManager and fallback (``mmx64.efi``, ``fbx64.efi``): shim asks for MokManager only when GRUB fails
  verification, and without it the machine silently leaves the network boot instead of showing why
  (warewulf#2238). A warning: a correctly signed chain boots without them.
* UEFI HTTP Boot: its clients get shim and GRUB in a disk image (:mod:`netboot.shimdisk`) that mtools
  builds; without mtools they get no boot file (PXE clients are not affected). A warning, at check and at
  serve: one package fixes it, and a site may boot only by PXE.
* kernels and initrds: that GRUB fetches only over TFTP, so only files in a profile's ``data_dir``
  (``files/<profile>/<path>``) reach it. A profile on the chain whose kernel or initrd is only a URL (no
  ``path:``) can never boot there (its GRUB config falls back to the local disk, for http as for https):
  an error. One with a ``path:`` whose file is not there yet falls back to its URL: a
  warning, like the missing-file warning ``netboot check`` gives every profile.

Only UEFI x64 machines are affected (the chain does not change BIOS, ARM64 or an already-iPXE client), so a
registered machine whose recorded architecture is another one is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from netboot.arch import Arch
from netboot.boot.choose import choose
from netboot.boot.decide import SHIM_CHAIN
from netboot.inventory import System
from netboot.loaders import Loaders, apt_install
from netboot.profiles import Group, Profile, ProfileSet, boot_chain_for
from netboot.profiles.model import FileSource
from netboot.render.problem import Problem
from netboot.shimdisk import MTOOLS_PACKAGE

#: the label of findings about the iPXE loaders
LOADERS_LABEL = "(loaders)"
#: the label of findings about the chain as a whole (as ``netboot check`` labels ``(no profile)``)
CHAIN_LABEL = "(shim-grub chain)"
#: the label of the finding that lists registered machines
SYSTEMS_LABEL = "(systems)"
#: how many names a finding or log line lists before "and N more"
SHOWN = 8


@dataclass(frozen=True)
class ShimUse:
    """Where the shim-grub chain is chosen, and what it covers."""

    #: the configuration file whose ``boot-chain`` is ``shim-grub`` (``"configuration"`` without a file);
    #: None when the site's default is ``ipxe``
    site: str | None
    #: profiles whose own (or a parent's) ``boot_chain`` is ``shim-grub``
    profiles: tuple[Profile, ...]
    #: groups whose own ``boot_chain`` is ``shim-grub``
    groups: tuple[Group, ...]
    #: registered machines whose next netboot is on the chain (UEFI x64, or architecture not yet seen)
    systems: tuple[System, ...]
    #: every profile some machine may install through GRUB on the chain (its kernel must come over TFTP)
    booted: tuple[Profile, ...]

    @property
    def any(self) -> bool:
        return bool(self.site or self.profiles or self.groups or self.systems)


def shim_use(
    profiles: ProfileSet,
    systems: Iterable[System],
    *,
    site_chain: str,
    unknown_default: str = "local",
    site_source: str | None = None,
) -> ShimUse:
    """Who chooses the shim-grub chain: the site (``site_chain``, from ``site_source``), profiles, groups,
    and each registered machine as the boot core would choose for it."""
    on_chain: list[System] = []
    booted: dict[str, Profile] = {}
    for system in systems:
        if system.arch not in (None, Arch.UEFI_X64.value):
            continue
        choice = choose(system, profiles, unknown_default, site_boot_chain=site_chain)
        if choice.boot_chain == SHIM_CHAIN:
            on_chain.append(system)
            if choice.profile is not None:
                booted.setdefault(choice.profile.name, choice.profile)
    for profile in profiles:
        if boot_chain_for(None, None, profile, site_chain) == SHIM_CHAIN:
            booted.setdefault(profile.name, profile)
    for group in profiles.groups:
        target = profiles.get(group.profile)
        if target is not None and boot_chain_for(None, group, target, site_chain) == SHIM_CHAIN:
            booted.setdefault(target.name, target)
    return ShimUse(
        site=(site_source or "configuration") if site_chain == SHIM_CHAIN else None,
        profiles=tuple(p for p in profiles if p.boot_chain == SHIM_CHAIN),
        groups=tuple(g for g in profiles.groups if g.boot_chain == SHIM_CHAIN),
        systems=tuple(on_chain),
        booted=tuple(sorted(booted.values(), key=lambda p: p.name)),
    )


def ipxe_problems(loaders: Loaders) -> list[Problem]:
    """A warning for each iPXE loader not found: its clients get no boot file."""
    return [
        Problem(LOADERS_LABEL, None, f"{arch.value}: {name} not found in loaders.dir or /usr/lib/ipxe "
                "(apt-get install ipxe, or put it in loaders.dir): these clients get no boot file", "warning")
        for arch, name in loaders.missing.items()
    ]


def listed(names: Sequence[str], shown: int = SHOWN) -> str:
    """``a, b, c`` or ``a, b (and 3 more)``."""
    head = ", ".join(names[:shown])
    return head + (f" (and {len(names) - shown} more)" if len(names) > shown else "")


def _missing_files(loaders: Loaders) -> str:
    missing = loaders.shim_required_missing
    return (f"{' and '.join(missing)} not found ({apt_install(missing.values())}, or put "
            f"{' and '.join(missing)} in loaders.dir)")


#: why MokManager and fallback matter although the chain boots without them
NO_MOKMANAGER = ("without MokManager (mmx64.efi) a machine whose GRUB or kernel fails Secure Boot "
                 "verification leaves the network boot without saying why, since shim has no fallback of its "
                 "own (warewulf#2238)")


def _no_disk_image(loaders: Loaders) -> str:
    """Why UEFI HTTP Boot clients on the chain get no boot file although shim and GRUB are there."""
    return (f"{', '.join(loaders.mtools_missing)} not found ({apt_install([MTOOLS_PACKAGE])}): UEFI HTTP "
            "Boot clients on the shim-grub chain get no boot file (their disk image cannot be built); "
            "PXE clients boot")


def check_problems(loaders: Loaders, use: ShimUse) -> list[Problem]:
    """What ``netboot check`` reports for the chain (nothing when nobody chooses it)."""
    if not use.any:
        return []
    problems: list[Problem] = []
    if not loaders.shim_ready:
        lacking = _missing_files(loaders)
        if use.site:
            problems.append(Problem(use.site, None, f"boot-chain: shim-grub, but {lacking}: UEFI x64 PXE "
                                    "machines that do not choose ipxe get no boot file"))
        for file in [p.file for p in use.profiles] + [g.file for g in use.groups]:
            problems.append(Problem(str(file), None, f"boot_chain: shim-grub, but {lacking}: its "
                                    "UEFI x64 PXE machines get no boot file"))
        if use.systems:
            macs = listed([s.mac.colon for s in use.systems])
            problems.append(Problem(SYSTEMS_LABEL, None, f"{len(use.systems)} registered machine(s) on the "
                                    f"shim-grub chain get no boot file by UEFI PXE: {macs} ({lacking})"))
    helpers = loaders.shim_helpers_missing
    if helpers:
        problems.append(Problem(CHAIN_LABEL, None, f"{', '.join(helpers)} not found "
                                f"({apt_install(helpers.values())}): {NO_MOKMANAGER}", "warning"))
    if loaders.shim_ready and loaders.mtools_missing:
        problems.append(Problem(CHAIN_LABEL, None, _no_disk_image(loaders), "warning"))
    for profile in use.booted:
        problems += _grub_file_problems(profile)
    return problems


def _grub_file_problems(profile: Profile) -> list[Problem]:
    """A kernel or initrd GRUB cannot fetch: it reaches only ``data_dir`` files, over TFTP."""
    if not profile.installs or profile.kernel is None:
        return []
    sources: list[tuple[str, FileSource]] = [("kernel", profile.kernel)]
    sources += [(f"initrd {s.name}", s) for s in profile.initrds]
    problems: list[Problem] = []
    for what, source in sources:
        if source.path and profile.data_file(source.path) is not None:
            continue  # served as files/<profile>/<path> over TFTP
        if source.url is None:
            continue  # neither here nor elsewhere: the missing-file warning of every profile says so
        why = _why_grub_cannot(source.url)
        if source.path is None:
            problems.append(Problem(str(profile.file), None, f"{what}: only {source.url} on the shim-grub "
                                    f"chain, and {why}: put the file in the profile's data_dir and name it "
                                    "with path:"))
        else:
            problems.append(Problem(str(profile.file), None, f"{what}: {source.path!r} is not in "
                                    f"{profile.data_dir}, so machines on the shim-grub chain would need "
                                    f"{source.url}, and {why}", "warning"))
    return problems


def _why_grub_cannot(url: str) -> str:
    if urlsplit(url).scheme == "https":
        return "GRUB cannot fetch https (its config boots the local disk instead of installing)"
    return "Debian 12's signed GRUB fetches only over TFTP (it has no http module)"


def serve_warnings(loaders: Loaders, use: ShimUse) -> list[str]:
    """What ``netboot serve`` logs at WARNING at start: who gets no boot file, and what to install."""
    if not use.any:
        return []
    lines: list[str] = []
    if not loaders.shim_ready:
        who = []
        if use.site:
            who.append(f"every machine that does not choose ipxe (boot-chain: shim-grub in {use.site})")
        if use.profiles:
            who.append(f"profiles {listed([p.name for p in use.profiles])}")
        if use.groups:
            who.append(f"groups {listed([g.name for g in use.groups])}")
        if use.systems:
            who.append(f"machines {listed([s.mac.colon for s in use.systems])}")
        lines.append(f"Secure Boot (shim-grub): {_missing_files(loaders)}; UEFI x64 PXE clients will get "
                     f"no boot file: {'; '.join(who)}")
    helpers = loaders.shim_helpers_missing
    if helpers:
        lines.append(f"Secure Boot (shim-grub): {', '.join(helpers)} not found "
                     f"({apt_install(helpers.values())}): {NO_MOKMANAGER}")
    if loaders.shim_ready and loaders.mtools_missing:
        lines.append(f"Secure Boot (shim-grub): {_no_disk_image(loaders)}")
    return lines


__all__ = ["ShimUse", "check_problems", "ipxe_problems", "listed", "serve_warnings", "shim_use"]
