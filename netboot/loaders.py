"""Finding boot loaders: which iPXE binaries exist, for which client architecture.

Loaders are looked up in the configured directory first, then in Debian's ``ipxe`` package
(``/usr/lib/ipxe``). ``netboot serve`` prints what it found and what it lacks, so an admin knows at start
that, say, UEFI clients will get no answer, instead of finding out from a machine that will not boot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from netboot.arch import Arch
from netboot.config import DEBIAN_IPXE_DIR, LoadersConfig


@dataclass(frozen=True)
class Loaders:
    """Loader file name per architecture (only the ones found) and where each file is."""

    by_arch: dict[Arch, str]
    paths: dict[str, Path]
    missing: dict[Arch, str]

    def path(self, name: str) -> Path | None:
        return self.paths.get(name)

    def describe(self) -> str:
        found = ", ".join(f"{arch.value}={self.paths[name]}" for arch, name in self.by_arch.items())
        lacking = ", ".join(f"{arch.value} ({name})" for arch, name in self.missing.items())
        text = f"loaders found: {found or 'none'}"
        return text + (f"; missing: {lacking}" if lacking else "")


def find_loaders(cfg: LoadersConfig, search: tuple[Path, ...] | None = None) -> Loaders:
    dirs = search if search is not None else tuple(d for d in (cfg.dir, DEBIAN_IPXE_DIR) if d is not None)
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
    return Loaders(by_arch, paths, missing)
