"""Finding the loaders in fake system roots (tmp_path trees laid out as Debian's packages install them):
iPXE in ``loaders.dir`` then ``usr/lib/ipxe``; the Secure Boot set in ``loaders.dir`` by its served name, then
Debian's paths, then the install-deps cache; what is missing named with its package; ``shim_ready`` needing
shim and GRUB only; ``describe()`` saying all of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from netboot.arch import Arch
from netboot.config import LoadersConfig
from netboot.loaders import (
    SECUREBOOT_CACHE,
    SHIM_FILES,
    SYSTEM_ROOT,
    apt_install,
    find_loaders,
    find_shim_files,
    shim_roots_under,
)

DEBIAN = {
    "shimx64.efi": "usr/lib/shim/shimx64.efi.signed",
    "grubx64.efi": "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
    "mmx64.efi": "usr/lib/shim/mmx64.efi.signed",
    "fbx64.efi": "usr/lib/shim/fbx64.efi.signed",
}
PACKAGES = {
    "shimx64.efi": "shim-signed",
    "grubx64.efi": "grub-efi-amd64-signed",
    "mmx64.efi": "shim-helpers-amd64-signed",
    "fbx64.efi": "shim-helpers-amd64-signed",
}


def put(root: Path, relative: str, content: bytes = b"x") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def debian_root(root: Path, *served: str) -> Path:
    """A fake ``/`` with the Debian files of ``served`` (the served names) installed."""
    for name in served:
        put(root, DEBIAN[name])
    return root


def test_the_table_is_what_debian_ships() -> None:
    assert {name: SHIM_FILES[name][0] for name in SHIM_FILES} == DEBIAN
    assert {name: SHIM_FILES[name][1] for name in SHIM_FILES} == PACKAGES
    # this machine's places: Debian's own, then where install-deps.sh unpacks the shim packages
    assert shim_roots_under(SYSTEM_ROOT) == (Path("/"), Path("/var/cache/netboot/secureboot"))


def test_nothing_installed_reports_every_file_with_its_package(tmp_path: Path) -> None:
    found, missing = find_shim_files(None, shim_roots_under(tmp_path))
    assert found == {} and missing == PACKAGES
    loaders = find_loaders(LoadersConfig(), root=tmp_path)
    assert loaders.by_arch == {} and loaders.paths == {}
    assert loaders.missing == {Arch.BIOS: "undionly.kpxe", Arch.UEFI_X64: "ipxe.efi"}
    assert loaders.shim_missing == PACKAGES and not loaders.shim_ready
    required = {"shimx64.efi": "shim-signed", "grubx64.efi": "grub-efi-amd64-signed"}
    assert loaders.shim_required_missing == required


def test_debian_paths_under_the_root(tmp_path: Path) -> None:
    root = debian_root(tmp_path, *DEBIAN)
    loaders = find_loaders(LoadersConfig(), root=root)
    assert {name: loaders.path(name) for name in DEBIAN} == {name: root / DEBIAN[name] for name in DEBIAN}
    assert loaders.shim_missing == {} and loaders.shim_ready


def test_the_install_deps_cache_is_the_second_root(tmp_path: Path) -> None:
    """On a UEFI host install-deps.sh unpacks the shim packages into the cache instead of installing them;
    GRUB (no maintainer scripts) is installed normally."""
    root = debian_root(tmp_path, "grubx64.efi")
    cache = root / "var/cache/netboot/secureboot"
    for name in ("shimx64.efi", "mmx64.efi", "fbx64.efi"):
        put(cache, DEBIAN[name])
    loaders = find_loaders(LoadersConfig(), root=root)
    assert loaders.path("shimx64.efi") == cache / DEBIAN["shimx64.efi"]
    assert loaders.path("mmx64.efi") == cache / DEBIAN["mmx64.efi"]
    assert loaders.path("grubx64.efi") == root / DEBIAN["grubx64.efi"]
    assert loaders.shim_ready and loaders.shim_missing == {}


def test_the_installed_package_wins_over_the_cache(tmp_path: Path) -> None:
    root = debian_root(tmp_path, "shimx64.efi")
    put(root / SECUREBOOT_CACHE, DEBIAN["shimx64.efi"])
    assert find_loaders(LoadersConfig(), root=root).path("shimx64.efi") == root / DEBIAN["shimx64.efi"]


def test_loaders_dir_by_served_name_wins(tmp_path: Path) -> None:
    """A site's own signed builds in loaders.dir, named as the machine asks for them, beat Debian's."""
    root = debian_root(tmp_path / "root", *DEBIAN)
    mine = tmp_path / "mine"
    put(mine, "shimx64.efi")
    put(mine, "grubx64.efi")
    put(mine, "shimx64.efi.signed")  # Debian's name in loaders.dir is not a served name: not looked at
    loaders = find_loaders(LoadersConfig(dir=mine), root=root)
    assert loaders.path("shimx64.efi") == mine / "shimx64.efi"
    assert loaders.path("grubx64.efi") == mine / "grubx64.efi"
    assert loaders.path("mmx64.efi") == root / DEBIAN["mmx64.efi"]  # the rest from Debian's places


def test_loaders_dir_alone_is_enough_and_debian_names_there_are_not(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    put(mine, "grubnetx64.efi.signed")
    put(mine, "shimx64.efi.signed")
    found, missing = find_shim_files(mine, shim_roots_under(tmp_path / "empty"))
    assert found == {} and missing == PACKAGES
    put(mine, "shimx64.efi")
    put(mine, "grubx64.efi")
    assert find_loaders(LoadersConfig(dir=mine), root=tmp_path / "empty").shim_ready


def test_a_directory_by_that_name_is_not_a_file(tmp_path: Path) -> None:
    root = tmp_path
    (root / DEBIAN["shimx64.efi"]).mkdir(parents=True)
    debian_root(root, "grubx64.efi")
    loaders = find_loaders(LoadersConfig(), root=root)
    assert "shimx64.efi" in loaders.shim_missing and not loaders.shim_ready


@pytest.mark.parametrize("present", [("shimx64.efi",), ("grubx64.efi",),
                                     ("shimx64.efi", "mmx64.efi", "fbx64.efi")])
def test_shim_ready_needs_both_shim_and_grub(tmp_path: Path, present: tuple[str, ...]) -> None:
    loaders = find_loaders(LoadersConfig(), root=debian_root(tmp_path, *present))
    assert not loaders.shim_ready
    assert set(loaders.shim_required_missing) == {"shimx64.efi", "grubx64.efi"} - set(present)


def test_shim_ready_without_mokmanager_and_fallback_which_are_still_reported(tmp_path: Path) -> None:
    loaders = find_loaders(LoadersConfig(), root=debian_root(tmp_path, "shimx64.efi", "grubx64.efi"))
    assert loaders.shim_ready
    helpers = "shim-helpers-amd64-signed"
    assert loaders.shim_missing == {"mmx64.efi": helpers, "fbx64.efi": helpers}
    assert loaders.shim_helpers_missing == loaders.shim_missing and loaders.shim_required_missing == {}


def test_ipxe_loaders_from_loaders_dir_then_the_roots_debian_dir(tmp_path: Path) -> None:
    root = tmp_path / "root"
    put(root, "usr/lib/ipxe/ipxe.efi", b"debian")
    put(root, "usr/lib/ipxe/undionly.kpxe", b"debian")
    mine = tmp_path / "mine"
    put(mine, "undionly.kpxe", b"mine")
    loaders = find_loaders(LoadersConfig(dir=mine, uefi_arm64="ipxe-arm64.efi"), root=root)
    assert loaders.by_arch == {Arch.BIOS: "undionly.kpxe", Arch.UEFI_X64: "ipxe.efi"}
    assert loaders.path("undionly.kpxe") == mine / "undionly.kpxe"
    assert loaders.path("ipxe.efi") == root / "usr/lib/ipxe/ipxe.efi"
    assert loaders.missing == {Arch.UEFI_ARM64: "ipxe-arm64.efi"}


def test_describe_names_what_was_found_and_the_packages_missing(tmp_path: Path) -> None:
    root = debian_root(tmp_path, "grubx64.efi")
    put(root, "usr/lib/ipxe/ipxe.efi")
    text = find_loaders(LoadersConfig(), root=root).describe()
    assert f"loaders found: uefi-x64={root / 'usr/lib/ipxe/ipxe.efi'}" in text
    assert "missing: bios (undionly.kpxe)" in text
    assert f"Secure Boot (shim-grub): grubx64.efi={root / DEBIAN['grubx64.efi']}" in text
    assert text.endswith("; missing: shimx64.efi, mmx64.efi, fbx64.efi "
                         "(apt-get install shim-helpers-amd64-signed shim-signed)")


def test_describe_when_everything_is_there(tmp_path: Path) -> None:
    root = debian_root(tmp_path, *DEBIAN)
    text = find_loaders(LoadersConfig(), root=root).describe()
    shim = ", ".join(f"{name}={root / DEBIAN[name]}" for name in DEBIAN)
    assert text.endswith(f"; Secure Boot (shim-grub): {shim}")
    assert "apt-get" not in text


def test_describe_with_nothing_at_all(tmp_path: Path) -> None:
    text = find_loaders(LoadersConfig(), root=tmp_path).describe()
    assert text == ("loaders found: none; missing: bios (undionly.kpxe), uefi-x64 (ipxe.efi); Secure Boot "
                    "(shim-grub): none; missing: shimx64.efi, grubx64.efi, mmx64.efi, fbx64.efi "
                    "(apt-get install grub-efi-amd64-signed shim-helpers-amd64-signed shim-signed)")


def test_apt_install_names_each_package_once() -> None:
    assert apt_install(["b", "a", "b"]) == "apt-get install a b"


def test_explicit_search_dirs_and_shim_roots_replace_the_roots_places(tmp_path: Path) -> None:
    root = debian_root(tmp_path / "root", *DEBIAN)
    put(root, "usr/lib/ipxe/ipxe.efi")
    other = debian_root(tmp_path / "other", "shimx64.efi")
    ipxe = tmp_path / "ipxe"
    put(ipxe, "undionly.kpxe")
    loaders = find_loaders(LoadersConfig(), (ipxe,), (other,), root=root)
    assert loaders.by_arch == {Arch.BIOS: "undionly.kpxe"}  # root's usr/lib/ipxe is not searched
    assert loaders.path("shimx64.efi") == other / DEBIAN["shimx64.efi"]
    assert set(loaders.shim_missing) == {"grubx64.efi", "mmx64.efi", "fbx64.efi"}
