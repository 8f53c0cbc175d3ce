""":mod:`netboot.chaincheck`: who chooses the shim-grub chain (site, profile, group, machine, as the boot core
chooses), and what ``netboot check`` reports and ``netboot serve`` logs when this machine lacks what the
chain needs, over real profile trees and loaders found in fake system roots (tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pytest
from filetree import write_tree

from netboot.arch import Arch
from netboot.chaincheck import (
    CHAIN_LABEL,
    LOADERS_LABEL,
    SYSTEMS_LABEL,
    ShimUse,
    check_problems,
    ipxe_problems,
    listed,
    serve_warnings,
    shim_use,
)
from netboot.config import LoadersConfig
from netboot.inventory import System, SystemState
from netboot.loaders import SHIM_FILES, Loaders, find_loaders
from netboot.mac import MacAddress
from netboot.profiles import ProfileSet, load_profiles
from netboot.render import Problem

KS = "kind: kickstart\n"
MIRROR = "https://mirror.example/os"


@pytest.fixture
def profiles(tmp_path: Path) -> ProfileSet:
    """``secure`` says shim-grub and has its files; ``child`` inherits shim-grub from it; ``urls`` says
    shim-grub and has only URLs; ``grouped`` says nothing, has a path and a URL but not the file, and the
    ``sb`` group (room=sb) puts it on shim-grub; ``plain`` says nothing; ``ipxe`` says ipxe."""
    root = write_tree(tmp_path / "profiles", {
        "secure/profile.yaml": KS + "boot_chain: shim-grub\nkernel: vmlinuz\ninitrd: [initrd.img]\n",
        "secure/ks.cfg.j2": "",
        "secure/files/vmlinuz": "k",
        "secure/files/initrd.img": "i",
        "child/profile.yaml": "parent: secure\n",
        "urls/profile.yaml": KS + f"boot_chain: shim-grub\nkernel: {{url: {MIRROR}/vmlinuz}}\n"
                             "initrd: [{url: 'http://mirror.example/os/initrd.img'}]\n",
        "urls/ks.cfg.j2": "",
        "grouped/profile.yaml": KS + f"kernel: {{path: vmlinuz, url: {MIRROR}/vmlinuz}}\n",
        "grouped/ks.cfg.j2": "",
        "plain/profile.yaml": KS + f"kernel: {{url: {MIRROR}/vmlinuz}}\n",
        "plain/ks.cfg.j2": "",
        "ipxe/profile.yaml": KS + f"boot_chain: ipxe\nkernel: {{url: {MIRROR}/vmlinuz}}\n",
        "ipxe/ks.cfg.j2": "",
        "_groups/sb.yaml": "profile: grouped\nboot_chain: shim-grub\nselector: {labels: {room: sb}}\n",
        "_groups/lab.yaml": "profile: plain\nselector: {labels: {room: lab}}\n",
    })
    return load_profiles(root)


def mac(n: int) -> MacAddress:
    return MacAddress.parse(f"52:54:00:00:00:{n:02x}")


def system(n: int, profile: str | None = None, **more: object) -> System:
    more.setdefault("state", SystemState.INSTALL)
    return System(mac=mac(n), profile=profile, **more)  # type: ignore[arg-type]


def loaders_with(tmp_path: Path, *served: str) -> Loaders:
    """Loaders found in a fake root holding Debian's files of ``served`` (and Debian's iPXE)."""
    root = tmp_path / "root"
    for name in served:
        path = root / SHIM_FILES[name][0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"efi")
    for name in ("undionly.kpxe", "ipxe.efi"):
        (root / "usr/lib/ipxe").mkdir(parents=True, exist_ok=True)
        (root / "usr/lib/ipxe" / name).write_bytes(b"ipxe")
    return find_loaders(LoadersConfig(), root=root)


NOTHING = ()
READY = ("shimx64.efi", "grubx64.efi")
EVERYTHING = tuple(SHIM_FILES)


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


# ------------------------------------------------------------------------------------------- who


def test_who_chooses_the_chain(profiles: ProfileSet) -> None:
    machines = [
        system(1, "plain", boot_chain="shim-grub", arch="uefi-x64"),  # its own
        system(2, None, labels={"room": "sb"}),  # through the sb group (architecture not seen yet)
        system(3, "child", arch="uefi-x64"),  # through its profile's parent
        system(4, "plain", arch="uefi-x64"),  # ipxe: not on the chain
        system(5, "plain", boot_chain="shim-grub", arch="bios"),  # BIOS: the chain does not change it
        system(6, "secure", arch="uefi-arm64"),  # nor ARM64
        system(7, "ipxe", state=SystemState.DISCOVERED, boot_chain="shim-grub"),  # a discovered one's own
    ]
    use = shim_use(profiles, machines, site_chain="ipxe")
    assert use.site is None and use.any
    assert [p.name for p in use.profiles] == ["child", "secure", "urls"]
    assert [g.name for g in use.groups] == ["sb"]
    assert [s.mac for s in use.systems] == [mac(1), mac(2), mac(3), mac(7)]
    # what GRUB may be asked to boot: the profiles on the chain, the group's, and machine 1's plain
    assert [p.name for p in use.booted] == ["child", "grouped", "plain", "secure", "urls"]


def test_nobody_chooses_it(profiles: ProfileSet, tmp_path: Path) -> None:
    trimmed = ProfileSet(profiles.root, {"plain": profiles.get("plain")},  # type: ignore[dict-item]
                         [g for g in profiles.groups if g.name == "lab"])
    use = shim_use(trimmed, [system(1, "plain", arch="uefi-x64")], site_chain="ipxe")
    assert use == ShimUse(None, (), (), (), ()) and not use.any
    nothing = loaders_with(tmp_path, *NOTHING)
    assert check_problems(nothing, use) == [] and serve_warnings(nothing, use) == []


def test_the_site_chooses_it_for_whoever_does_not_say(profiles: ProfileSet) -> None:
    machines = [system(1, "plain"), system(2, "ipxe"), system(3, None, state=SystemState.DISCOVERED)]
    use = shim_use(profiles, machines, site_chain="shim-grub", site_source="/etc/netboot.yaml")
    assert use.site == "/etc/netboot.yaml"
    assert [s.mac for s in use.systems] == [mac(1), mac(3)]  # the ipxe profile says otherwise
    assert "ipxe" not in [p.name for p in use.booted] and "plain" in [p.name for p in use.booted]
    assert shim_use(profiles, [], site_chain="shim-grub").site == "configuration"  # defaults, no file


# ------------------------------------------------------------------------------------------- check


def test_check_without_shim_is_an_error_at_every_place_that_chose_it(profiles: ProfileSet,
                                                                     tmp_path: Path) -> None:
    use = shim_use(profiles, [system(1, "plain", boot_chain="shim-grub")], site_chain="shim-grub",
                   site_source="/etc/netboot.yaml")
    problems = check_problems(loaders_with(tmp_path, "grubx64.efi"), use)
    files = [p.file for p in errors(problems) if "shimx64.efi not found" in p.message]
    root = profiles.root
    assert files == ["/etc/netboot.yaml", str(root / "child/profile.yaml"), str(root / "secure/profile.yaml"),
                     str(root / "urls/profile.yaml"), str(root / "_groups/sb.yaml"), SYSTEMS_LABEL]
    site = next(p for p in problems if p.file == "/etc/netboot.yaml")
    assert str(site) == ("/etc/netboot.yaml: error: boot-chain: shim-grub, but shimx64.efi not found "
                         "(apt-get install shim-signed, or put shimx64.efi in loaders.dir): UEFI x64 PXE "
                         "machines that do not choose ipxe get no boot file")
    machines = next(p for p in problems if p.file == SYSTEMS_LABEL)
    assert "1 registered machine(s)" in machines.message and "52:54:00:00:00:01" in machines.message


def test_check_names_both_files_and_both_packages(profiles: ProfileSet, tmp_path: Path) -> None:
    use = shim_use(profiles, [], site_chain="ipxe")
    problems = check_problems(loaders_with(tmp_path, *NOTHING), use)
    secure = next(p for p in errors(problems) if p.file.endswith("secure/profile.yaml"))
    assert secure.message.startswith("boot_chain: shim-grub, but shimx64.efi and grubx64.efi not found "
                                     "(apt-get install grub-efi-amd64-signed shim-signed, or put shimx64.efi "
                                     "and grubx64.efi in loaders.dir)")
    helpers = next(p for p in problems if p.file == CHAIN_LABEL and "mmx64.efi" in p.message)
    assert helpers.severity == "warning" and "apt-get install shim-helpers-amd64-signed" in helpers.message


def test_check_with_shim_and_grub_only_warns_of_mokmanager(profiles: ProfileSet, tmp_path: Path) -> None:
    use = shim_use(profiles, [system(1, "secure")], site_chain="ipxe")
    problems = check_problems(loaders_with(tmp_path, *READY), use)
    assert not [p for p in problems if "not found" in p.message and p.severity == "error"]
    helpers = [p for p in problems if p.file == CHAIN_LABEL and "mmx64.efi, fbx64.efi not found" in p.message]
    assert len(helpers) == 1 and helpers[0].severity == "warning"
    assert "warewulf#2238" in helpers[0].message and "shim-helpers-amd64-signed" in helpers[0].message


def test_http_boot_image_without_mtools_is_a_warning_at_check_and_serve(
    profiles: ProfileSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use = shim_use(profiles, [], site_chain="ipxe")
    # make test installs mtools: then UEFI HTTP Boot gets the chain's disk image and nothing is said
    ready = loaders_with(tmp_path / "ready", *EVERYTHING)
    assert ready.shim_http_ready
    assert not [p for p in check_problems(ready, use) if "HTTP Boot" in p.message]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no mformat, mmd, mcopy
    loaders = loaders_with(tmp_path / "bare", *EVERYTHING)
    assert loaders.shim_ready and not loaders.shim_http_ready
    http = [p for p in check_problems(loaders, use) if "HTTP Boot" in p.message]
    assert len(http) == 1 and http[0].severity == "warning" and http[0].file == CHAIN_LABEL
    assert http[0].message.startswith("mformat, mmd, mcopy not found (apt-get install mtools): UEFI HTTP")
    assert http[0].message.endswith("PXE clients boot")
    assert serve_warnings(loaders, use) == [f"Secure Boot (shim-grub): {http[0].message}"]
    assert "UEFI HTTP Boot image: mformat, mmd, mcopy missing (apt-get install mtools)" in loaders.describe()


def test_check_boot_files_grub_cannot_fetch(profiles: ProfileSet, tmp_path: Path) -> None:
    use = shim_use(profiles, [], site_chain="ipxe")
    problems = check_problems(loaders_with(tmp_path, *EVERYTHING), use)
    by_file = {}
    for p in problems:
        by_file.setdefault(Path(p.file).parent.name, []).append(p)
    # urls: only URLs, on the chain: GRUB can never fetch them
    https, http = by_file["urls"]
    assert https.severity == http.severity == "error"
    assert https.message.startswith(f"kernel: only {MIRROR}/vmlinuz on the shim-grub chain, and GRUB cannot "
                                    "fetch https (its config boots the local disk instead of installing)")
    assert http.message.startswith("initrd initrd.img: only http://mirror.example/os/initrd.img on the "
                                   "shim-grub chain, and Debian 12's signed GRUB fetches only over TFTP")
    assert "data_dir" in https.message and "path:" in https.message
    # grouped: a path whose file is not there yet, on the chain through its group: the URL is a warning
    (fallback,) = by_file["grouped"]
    assert fallback.severity == "warning" and fallback.message.startswith("kernel: 'vmlinuz' is not in ")
    # secure and child have their files (served over TFTP); plain and ipxe are not on the chain
    assert not {"secure", "child", "plain", "ipxe"} & set(by_file)
    fallback_file = profiles.root / "grouped/files/vmlinuz"
    fallback_file.parent.mkdir()
    fallback_file.write_text("k")
    assert not [p for p in check_problems(loaders_with(tmp_path, *EVERYTHING), use) if "grouped" in p.file]


def test_ipxe_loaders_missing_are_warnings(tmp_path: Path) -> None:
    loaders = find_loaders(LoadersConfig(uefi_arm64="ipxe-arm64.efi"), root=tmp_path)
    problems = ipxe_problems(loaders)
    assert [(p.file, p.severity) for p in problems] == [(LOADERS_LABEL, "warning")] * 3
    assert str(problems[0]) == ("(loaders): warning: bios: undionly.kpxe not found in loaders.dir or "
                                "/usr/lib/ipxe (apt-get install ipxe, or put it in loaders.dir): these "
                                "clients get no boot file")
    assert ipxe_problems(loaders_with(tmp_path, *NOTHING)) == []
    assert Arch.UEFI_ARM64 in loaders.missing


# ------------------------------------------------------------------------------------------- serve


def test_serve_warns_who_gets_no_boot_file_and_what_to_install(profiles: ProfileSet, tmp_path: Path) -> None:
    use = shim_use(profiles, [system(1, "plain", boot_chain="shim-grub"), system(2, "secure")],
                   site_chain="ipxe")
    lines = serve_warnings(loaders_with(tmp_path, *NOTHING), use)
    assert lines[0] == ("Secure Boot (shim-grub): shimx64.efi and grubx64.efi not found (apt-get install "
                        "grub-efi-amd64-signed shim-signed, or put shimx64.efi and grubx64.efi in "
                        "loaders.dir); UEFI x64 PXE clients will get no boot file: profiles child, secure, "
                        "urls; groups sb; machines 52:54:00:00:00:01, 52:54:00:00:00:02")
    assert lines[1].startswith("Secure Boot (shim-grub): mmx64.efi, fbx64.efi not found (apt-get install "
                               "shim-helpers-amd64-signed): without MokManager")
    assert len(lines) == 2


def test_serve_names_the_site_default(profiles: ProfileSet, tmp_path: Path) -> None:
    use = shim_use(profiles, [], site_chain="shim-grub", site_source="/etc/netboot.yaml")
    (line, _) = serve_warnings(loaders_with(tmp_path, "mmx64.efi"), use)
    assert "every machine that does not choose ipxe (boot-chain: shim-grub in /etc/netboot.yaml)" in line


def test_serve_with_shim_ready(profiles: ProfileSet, tmp_path: Path) -> None:
    use = shim_use(profiles, [], site_chain="ipxe")
    (line,) = serve_warnings(loaders_with(tmp_path, *READY), use)
    assert "mmx64.efi, fbx64.efi not found" in line and "no boot file" not in line
    assert serve_warnings(loaders_with(tmp_path, *EVERYTHING), use) == []


def test_long_lists_are_cut() -> None:
    assert listed(["a", "b"]) == "a, b"
    assert listed([str(n) for n in range(10)], 3) == "0, 1, 2 (and 7 more)"
