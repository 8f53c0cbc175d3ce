"""Before a lab is built: the packages it needs, the profile it boots, and whether KVM can run a guest.

Each refusal is a :class:`~netboot.lab.base.LabError` with status 2 (bad input or a missing package) naming
what to install or change, so ``netboot lab up`` fails before it creates anything.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from netboot import qemu
from netboot.lab.base import LabError, Say
from netboot.lab.progress import Files, expected_files


def missing_packages(firmware: str, proxy: bool) -> list[str]:
    from netboot.config import LoadersConfig
    from netboot.loaders import find_loaders

    missing = []
    if shutil.which("ip") is None:
        missing.append("iproute2")
    missing += qemu.missing_firmware(firmware)
    missing += qemu.missing_disk_tools()
    if firmware.startswith("uefi"):
        from netboot.arch import Arch

        if Arch.UEFI_X64 not in find_loaders(LoadersConfig()).by_arch:
            missing.append("ipxe")
    if proxy and shutil.which("dnsmasq") is None:
        missing.append("dnsmasq-base")
    if shutil.which("ss") is None and "iproute2" not in missing:
        missing.append("iproute2")
    return sorted(set(missing))


def resolve_profile(profiles_dir: Path, name: str) -> Files:
    """Check that ``name`` is a loadable profile that can boot inside the lab; return its boot files."""
    from netboot.profiles import did_you_mean, load_profiles_collect

    if not (profiles_dir / name).is_dir() and not profiles_dir.is_dir():
        raise LabError(f"profiles directory {profiles_dir} does not exist (use --profiles DIR)", 2)
    profile_set, errors = load_profiles_collect(profiles_dir)
    profile = profile_set.get(name)
    if profile is None:
        own = [str(e) for e in errors if f"/{name}/" in str(e)]
        if own:
            raise LabError(f"profile {name!r} does not load:\n  " + "\n  ".join(own), 2)
        names = profile_set.names()
        raise LabError(
            f"profile {name!r} does not exist in {profiles_dir}{did_you_mean(name, names)}; "
            f"available: {', '.join(names) or 'none'}",
            2,
        )
    if profile.kernel is None:
        return Files()
    sources = [profile.kernel, *profile.initrds]
    sizes: list[int | None] = []
    for src in sources:
        local = profile.data_file(src.path) if src.path else None
        if local is None:
            where = src.url or src.path
            raise LabError(
                f"profile {name!r}: {src.name} is not available locally ({where}); the lab has no "
                f"route out, so its VMs could not fetch it (install the package that provides "
                f"{profile.data_dir or 'it'}, e.g. debian-installer-12-netboot-amd64)",
                2,
            )
        sizes.append(local.stat().st_size)
    return expected_files(profile.kernel.path, [i.path for i in profile.initrds if i.path], sizes)


def choose_accel(accel: str, say: Say) -> str:
    if accel == "tcg":
        return "tcg"
    if not Path("/dev/kvm").exists():
        if accel == "kvm":
            raise LabError("--accel kvm: there is no /dev/kvm on this machine; use --accel tcg or auto", 2)
        return "tcg"
    say("checking whether /dev/kvm can run a guest (boots a probe kernel for a few seconds)...")
    usable = qemu.kvm_usable()
    if accel == "kvm" and not usable:
        raise LabError("--accel kvm: /dev/kvm cannot run a guest on this machine; use --accel tcg or auto", 2)
    if not usable:
        say("KVM is not usable here (the probe guest did not start): using TCG, which is slower")
    return "kvm" if usable else "tcg"
