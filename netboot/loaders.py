"""Finding boot loaders: which iPXE binaries exist, for which client architecture, and the Secure Boot set.

iPXE loaders are looked up in the configured directory first, then in Debian's ``ipxe`` package
(``/usr/lib/ipxe``). The Secure Boot chain (``boot_chain: shim-grub``) needs four files, served over TFTP
by the names shim and GRUB ask for (read from real traffic: ``docs/secure-boot-research.md``); UEFI HTTP
Boot clients get shim, GRUB and MokManager in one disk image (:mod:`netboot.shimdisk`, built with mtools):

===============  ============================================================  ============================
served as        Debian file                                                   package
===============  ============================================================  ============================
``shimx64.efi``  ``/usr/lib/shim/shimx64.efi.signed`` (signed by Microsoft)    shim-signed
``grubx64.efi``  ``/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed``     grub-efi-amd64-signed
``mmx64.efi``    ``/usr/lib/shim/mmx64.efi.signed`` (MokManager)               shim-helpers-amd64-signed
``fbx64.efi``    ``/usr/lib/shim/fbx64.efi.signed`` (fallback)                 shim-helpers-amd64-signed
===============  ============================================================  ============================

Each is looked up in ``loaders.dir`` by its served name first (a site's own signed builds), then in
Debian's places, then in ``/var/cache/netboot/secureboot`` (where ``scripts/install-deps.sh`` unpacks the
shim packages on a UEFI host instead of letting their postinst run grub-install on the host itself).
``netboot serve`` and ``netboot check`` print what was found and what is missing, so an admin knows at start
that, say, Secure Boot machines will get no answer, instead of finding out from a machine that will not
boot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from netboot.arch import Arch
from netboot.boot.urls import GRUB_FILE, SHIM_BOOT_FILE
from netboot.config import DEBIAN_IPXE_DIR, LoadersConfig
from netboot.shimdisk import MTOOLS_PACKAGE, mtools_missing

#: the Secure Boot chain's files: the name shim and GRUB ask for -> (Debian's file names, the package)
SHIM_FILES: dict[str, tuple[str, str]] = {
    SHIM_BOOT_FILE: ("usr/lib/shim/shimx64.efi.signed", "shim-signed"),
    GRUB_FILE: ("usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed", "grub-efi-amd64-signed"),
    "mmx64.efi": ("usr/lib/shim/mmx64.efi.signed", "shim-helpers-amd64-signed"),
    "fbx64.efi": ("usr/lib/shim/fbx64.efi.signed", "shim-helpers-amd64-signed"),
}
#: the two the chain cannot start without (MokManager and fallback are asked for only when something fails)
SHIM_REQUIRED = (SHIM_BOOT_FILE, GRUB_FILE)
#: the file system Debian's packages install into; read at each :func:`find_loaders` call, so a test can
#: point it at a fake tree
SYSTEM_ROOT = Path("/")
#: below the system root: where install-deps.sh unpacks the shim packages on a UEFI host
SECUREBOOT_CACHE = Path("var/cache/netboot/secureboot")


def shim_roots_under(root: Path) -> tuple[Path, ...]:
    """Where Debian's paths of :data:`SHIM_FILES` are looked up: under ``root``, then under its cache."""
    return (root, root / SECUREBOOT_CACHE)


#: the roots on this machine
SHIM_ROOTS = shim_roots_under(Path("/"))


def apt_install(packages: Iterable[str]) -> str:
    """``apt-get install A B``: each package once, sorted."""
    return "apt-get install " + " ".join(sorted(set(packages)))


@dataclass(frozen=True)
class Loaders:
    """Loader file name per architecture (only the ones found), the Secure Boot set, where each file is."""

    by_arch: dict[Arch, str]
    paths: dict[str, Path]
    missing: dict[Arch, str]
    #: served name -> the Debian package that has it, for each Secure Boot file not found
    shim_missing: dict[str, str] = field(default_factory=dict)
    #: the mtools programs not found: without them the chain's UEFI HTTP Boot image cannot be built
    mtools_missing: tuple[str, ...] = ()

    def path(self, name: str) -> Path | None:
        return self.paths.get(name)

    @property
    def shim_ready(self) -> bool:
        """Whether the shim-grub chain can be served: shim and GRUB found (MokManager and fallback are
        only asked for when something fails, so their absence is reported but does not stop the chain)."""
        return all(name in self.paths for name in SHIM_REQUIRED)

    @property
    def shim_http_ready(self) -> bool:
        """Whether UEFI HTTP Boot clients can get the chain too: its disk image needs mtools to build."""
        return self.shim_ready and not self.mtools_missing

    @property
    def shim_required_missing(self) -> dict[str, str]:
        """Of shim and GRUB, the ones not found (served name -> package): the chain needs both."""
        return {n: p for n, p in self.shim_missing.items() if n in SHIM_REQUIRED}

    @property
    def shim_helpers_missing(self) -> dict[str, str]:
        """MokManager and fallback not found (served name -> package): the chain runs without them."""
        return {n: p for n, p in self.shim_missing.items() if n not in SHIM_REQUIRED}

    def describe(self) -> str:
        found = ", ".join(f"{arch.value}={self.paths[name]}" for arch, name in self.by_arch.items())
        lacking = ", ".join(f"{arch.value} ({name})" for arch, name in self.missing.items())
        text = f"loaders found: {found or 'none'}"
        if lacking:
            text += f"; missing: {lacking}"
        shim = ", ".join(f"{n}={self.paths[n]}" for n in SHIM_FILES if n not in self.shim_missing)
        text += f"; Secure Boot (shim-grub): {shim or 'none'}"
        if self.shim_missing:
            text += f"; missing: {', '.join(self.shim_missing)} ({apt_install(self.shim_missing.values())})"
        if self.mtools_missing:
            lacking = ", ".join(self.mtools_missing)
            text += f"; UEFI HTTP Boot image: {lacking} missing ({apt_install([MTOOLS_PACKAGE])})"
        return text


def find_shim_files(
    directory: Path | None, roots: tuple[Path, ...] = SHIM_ROOTS
) -> tuple[dict[str, Path], dict[str, str]]:
    """The Secure Boot files found (served name -> path) and the missing ones (served name -> package).

    ``directory`` (``loaders.dir``) by the served name first, so a site's own signed build wins; then
    Debian's file under each of ``roots``."""
    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for name, (debian_name, package) in SHIM_FILES.items():
        candidates = [directory / name] if directory is not None else []
        candidates += [root / debian_name for root in roots]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            missing[name] = package
        else:
            found[name] = hit
    return found, missing


def find_loaders(
    cfg: LoadersConfig,
    search: tuple[Path, ...] | None = None,
    shim_roots: tuple[Path, ...] | None = None,
    *,
    root: Path | None = None,
) -> Loaders:
    """Every loader ``cfg`` names, in ``cfg.dir`` then in Debian's places under ``root`` (the system's
    root, :data:`SYSTEM_ROOT`, unless given): iPXE from ``usr/lib/ipxe``, the Secure Boot set as
    :func:`find_shim_files` says. ``search`` (the iPXE directories) and ``shim_roots`` replace those
    places outright."""
    system = SYSTEM_ROOT if root is None else root
    debian_ipxe = system / DEBIAN_IPXE_DIR.relative_to(DEBIAN_IPXE_DIR.anchor)
    dirs = search if search is not None else tuple(d for d in (cfg.dir, debian_ipxe) if d is not None)
    wanted: dict[Arch, str | None] = {
        Arch.BIOS: cfg.bios,
        Arch.UEFI_X64: "snponly.efi" if cfg.snponly else cfg.uefi_x64,
        Arch.UEFI_ARM64: cfg.uefi_arm64,
        Arch.UEFI_IA32: cfg.uefi_ia32,
    }
    by_arch: dict[Arch, str] = {}
    paths: dict[str, Path] = {}
    missing: dict[Arch, str] = {}
    for arch, name in wanted.items():
        if name is None:
            continue
        for directory in dirs:
            candidate = directory / name
            if candidate.is_file():
                by_arch[arch] = Path(name).name
                paths[Path(name).name] = candidate
                break
        else:
            missing[arch] = name
    roots = shim_roots_under(system) if shim_roots is None else shim_roots
    shim_found, shim_missing = find_shim_files(cfg.dir, roots)
    return Loaders(by_arch, {**shim_found, **paths}, missing, shim_missing, tuple(mtools_missing()))
